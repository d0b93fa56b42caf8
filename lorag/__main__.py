from lorag.cli import run

run()
