"""Plans against pretend hardware, the hardware probe, size parsing, and the `lorag model` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorag.errors import LoragError
from lorag.inspect.hardware import format_size, parse_size, pretend_hardware, probe_hardware
from lorag.inspect.model import inspect_path
from lorag.inspect.placement import plan_model

CONFIGS = Path(__file__).parent.parent / "fixtures" / "configs"
GB = 10**9


def _hw(gpu: float, ram: float = 64) -> object:
    return pretend_hardware(int(gpu * GB), int(ram * GB))


def test_32b_on_36gb_gpu_chooses_q4_k_m_on_gpu() -> None:
    plan = plan_model(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b"), _hw(36), 4096)  # type: ignore[arg-type]
    bf16 = plan.options[0]
    assert (bf16.backend, bf16.precision, bf16.fits) == ("transformers", "bf16", False)
    chosen = plan.choice
    assert chosen is not None
    assert (chosen.backend, chosen.precision, chosen.placement, chosen.fits) == ("llamacpp", "Q4_K_M", "gpu", True)
    assert chosen.needs_build
    assert plan.reason == ("model needs 67.1 GB in bf16, GPU has 36.0 GB free; GGUF Q4_K_M fully on the GPU "
                           "(21.4 GB with 4k context) fits")
    q8 = next(o for o in plan.options if o.precision == "Q8_0" and o.placement == "gpu")
    assert not q8.fits
    assert plan.best_ready() is not None and plan.best_ready().precision == "4bit"  # type: ignore[union-attr]


def test_32b_on_24gb_card() -> None:
    plan = plan_model(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b"), _hw(24), 4096)  # type: ignore[arg-type]
    assert plan.choice is not None and plan.choice.label() == "GGUF Q4_K_M fully on the GPU"
    # At 32k context the KV cache (8 GiB) pushes Q4_K_M off the card: partial offload.
    long = plan_model(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b"), _hw(24), 32768)  # type: ignore[arg-type]
    assert long.choice is not None and long.choice.label() == "GGUF Q4_K_M partly offloaded to the CPU"


def test_cpu_only_64gb() -> None:
    plan = plan_model(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b"), _hw(0, 64), 4096)  # type: ignore[arg-type]
    assert all(o.placement == "cpu" for o in plan.options)
    assert not any(o.precision in ("4bit", "8bit") for o in plan.options)  # bitsandbytes needs CUDA
    assert plan.choice is not None and plan.choice.label() == "GGUF Q4_K_M on the CPU"
    assert plan.reason.startswith("model needs 21.4 GB as GGUF Q4_K_M on the CPU, no GPU, 64.0 GB RAM free")


def test_7b_fits_in_bf16_on_36gb() -> None:
    plan = plan_model(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-7b"), _hw(36), 4096)  # type: ignore[arg-type]
    assert plan.chosen == 0
    assert plan.choice is not None and (plan.choice.backend, plan.choice.precision) == ("transformers", "bf16")
    assert not plan.choice.needs_build


def test_llama_8b_on_8gb_card_with_4bit_preference() -> None:
    info = inspect_path(CONFIGS / "llama-3.1-8b")
    plan = plan_model(info, _hw(8, 16), 4096, bnb="4bit")  # type: ignore[arg-type]
    assert plan.choice is not None and (plan.choice.backend, plan.choice.precision) == ("transformers", "4bit")


def test_nothing_fits() -> None:
    plan = plan_model(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b"), _hw(4, 8), 4096)  # type: ignore[arg-type]
    assert plan.chosen is None
    assert plan.reason.startswith("nothing fits: GPU has 4.0 GB free and 8.0 GB RAM free; the smallest option")
    d = plan.to_dict()
    assert d["chosen"] is None
    json.dumps(d)


def test_adapter_plan_uses_base_shapes(tiny_qwen2_adapter: Path) -> None:
    plan = plan_model(inspect_path(tiny_qwen2_adapter), _hw(0, 16), 2048)  # type: ignore[arg-type]
    assert plan.choice is not None
    assert plan.reason.startswith("fine-tune needs")


def test_gguf_plan_runs_the_file_itself(tmp_path: Path) -> None:
    from lorag.generate.llamacpp import bundled_model_path

    plan = plan_model(inspect_path(bundled_model_path()), _hw(0, 4), 4096)  # type: ignore[arg-type]
    assert [(o.backend, o.precision, o.needs_build) for o in plan.options] == [("llamacpp", "Q4_K_M", False),
                                                                                ("ollama", "Q4_K_M", False)]
    assert plan.chosen == 0


def test_json_shape() -> None:
    d = plan_model(inspect_path(CONFIGS / "llama-3.1-8b"), _hw(24), 4096).to_dict()  # type: ignore[arg-type]
    assert set(d) >= {"options", "chosen", "reason"}
    assert set(d["options"][0]) >= {"backend", "precision", "memory_bytes", "fits"}
    assert isinstance(d["chosen"], int)


@pytest.mark.parametrize("text,value", [("36GB", 36 * 10**9), ("24GiB", 24 * 2**30), ("512MB", 512 * 10**6),
                                        ("1.5G", 1_500_000_000), ("0", 0), ("64 gb", 64 * 10**9)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_parse_size_rejects_nonsense() -> None:
    with pytest.raises(LoragError, match="cannot read the size 'lots'"):
        parse_size("lots")


def test_format_size() -> None:
    assert format_size(20.94e9) == "20.9 GB"
    assert format_size(512e6) == "512 MB"


def test_probe_this_machine() -> None:
    hw = probe_hardware()
    assert hw.ram_total > 0 and hw.ram_available > 0 and hw.cpu_cores >= 1
    assert hw.gpu_free == sum(g.free_bytes for g in hw.gpus)


# --- CLI ------------------------------------------------------------------------------------------------------------

def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from lorag.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_plan_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["model", "plan", str(CONFIGS / "deepseek-r1-distill-qwen-32b"), "--gpu-memory", "36GB",
                         "--ram", "64GB", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["options"][d["chosen"]]["precision"] == "Q4_K_M"
    assert d["hardware"]["gpu_free"] == 36 * 10**9


def test_cli_plan_table(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["model", "plan", str(CONFIGS / "llama-3.1-8b"), "--gpu-memory", "0", "--ram", "64GB"], capsys)
    assert code == 0
    assert "chosen:" in out and "Q4_K_M" in out


def test_cli_inspect_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["model", "inspect", str(CONFIGS / "llama-3.1-8b"), "--json"], capsys)
    assert code == 0
    assert json.loads(out)["n_params"] == 8_030_261_248


def test_cli_inspect_adapter_table(config_file: Path, tiny_qwen2_adapter: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["model", "inspect", str(tiny_qwen2_adapter)], capsys)
    assert code == 0
    assert "base model" in out and "QLoRA" in out


def test_cli_errors_are_one_red_line(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"NOPE" * 10)
    code, _, err = _cli(["model", "inspect", str(bad)], capsys)
    assert code == 1
    assert "is not a GGUF file" in err and "Traceback" not in err
    code, _, err = _cli(["model", "plan", str(CONFIGS / "llama-3.1-8b"), "--gpu-memory", "lots"], capsys)
    assert code == 1 and "cannot read the size" in err


def test_placement_for_is_the_one_composition(config_file: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    from lorag.config import load_config, update_config
    from lorag.inspect.placement import placement_for

    hw = pretend_hardware(0, 16 * GB)
    config = load_config(config_file)
    by_path = placement_for(config, str(tiny_qwen2), hw).to_dict()
    settings = config.settings
    assert by_path == plan_model(inspect_path(tiny_qwen2), hw, settings.llm.context, settings.build.quantization,
                                 settings.llm.quantization).to_dict()
    assert placement_for(config, str(tiny_qwen2), hw, n_ctx=1024).n_ctx == 1024
    configured = update_config(config_file, {"llm.model": str(tiny_qwen2), "llm.adapter": str(tiny_qwen2_adapter)})
    plan = placement_for(configured, None, hw)  # the configured model with its adapter, as the generator sees it
    assert (plan.info.kind, plan.info.path) == ("adapter", str(tiny_qwen2_adapter))
    assert plan.info.base is not None and plan.info.base.path == str(tiny_qwen2)
