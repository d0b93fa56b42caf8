// UI text: Japanese first, English on toggle. Keys are looked up by data-i18n attributes and t().
"use strict";
const MESSAGES = {
  ja: {
    "tab.chat": "チャット", "tab.documents": "文書", "tab.models": "モデル",
    "token.button": "トークン", "token.title": "API トークン",
    "token.help": "変更操作（アップロード・削除・モデル作成）にはトークンが必要です。`lorag serve` が表示した URL から開くと自動で設定されます。",
    "token.cancel": "キャンセル", "token.save": "保存", "token.saved": "トークンを保存しました",
    "token.needed": "この操作にはトークンが必要です",
    "chat.empty": "文書について質問してください。回答には出典番号が付きます。",
    "chat.placeholder": "例：経費はいつまでに申請すればよいですか？", "chat.send": "送信",
    "chat.source": "出典", "chat.sources": "出典", "chat.thinking": "検索中…", "chat.you": "あなた",
    "chat.page": "ページ", "chat.chars": "文字位置",
    "docs.upload": "アップロード", "docs.uploadButton": "アップロードして取り込む", "docs.list": "取り込み済みの文書",
    "docs.name": "名前", "docs.chunks": "チャンク", "docs.added": "追加日時", "docs.empty": "まだ文書がありません。",
    "docs.delete": "削除", "docs.reingest": "再取り込み", "docs.confirmDelete": "この文書を削除しますか？",
    "docs.uploading": "アップロード中…", "docs.ingesting": "取り込み中…", "docs.done": "取り込みました",
    "docs.choose": "ファイルを選んでください", "docs.failed": "失敗",
    "models.current": "現在のモデル", "models.planning": "計算中…（大きなモデルの読み取りには時間がかかります）", "models.plan": "このマシンでの実行計画", "models.build": "LoRA から GGUF を作成",
    "models.loraPath": "LoRA アダプターのパス", "models.quant": "量子化", "models.mode": "方式",
    "models.modeMerge": "マージ", "models.modeAdapter": "アダプター（実行時適用）", "models.name": "名前（任意）",
    "models.modeAuto": "自動（両方を作成し、挙動で選ぶ）", "models.evalPrompts": "評価用プロンプト（任意、JSONL）",
    "models.agreement": "挙動の一致率（貪欲生成）", "models.identical": "完全一致した回答", "models.evalSource": "評価プロンプト",
    "models.evalGeneric": "汎用の組み込みプロンプト（アダプターの評価データが見つかりません）",
    "models.routeChoice": "候補の比較", "models.candidate": "候補", "models.reason": "理由", "models.worst": "一致の低い回答",
    "models.reference": "基準（量子化なし）", "models.candidateAnswer": "この GGUF", "models.rule": "規則：挙動の一致率が最良から許容幅以内の候補のうち、KL が最小のもの",
    "models.start": "作成開始", "models.cancel": "中止", "models.status": "状態", "models.history": "ジョブ履歴",
    "models.created": "作成", "models.available": "利用できるモデル", "models.result": "結果",
    "models.size": "サイズ", "models.kl": "KL ダイバージェンス（平均）", "models.top1": "トップ1一致率",
    "models.gguf": "GGUF", "models.switched": "設定を新しいモデルに切り替えました", "models.shared": "同じ作成ジョブが進行中のため、そのジョブを表示します",
    "models.backend": "バックエンド", "models.model": "モデル", "models.adapter": "アダプター", "models.context": "コンテキスト長",
    "models.fits": "収まる", "models.noFit": "収まらない", "models.needsBuild": "要ビルド", "models.chosen": "採用",
    "models.ollamaDown": "Ollama に接続できません", "models.ollamaModels": "Ollama のモデル", "models.noArtifacts": "作成済みの GGUF はまだありません。",
    "status.queued": "待機中", "status.running": "実行中", "status.succeeded": "完了", "status.failed": "失敗", "status.cancelled": "中止",
    "stage.validate": "検証", "stage.merge": "マージ", "stage.convert": "GGUF 変換", "stage.quantize": "量子化",
    "stage.verify": "忠実度の確認", "stage.modelfile": "Modelfile", "stage.register": "登録", "stage.config": "設定の切り替え",
    "error": "エラー",
    "chat.collection": "コレクション", "chat.allCollections": "すべての文書", "chat.newChat": "新しい会話",
    "chat.cited": "回答で引用", "chat.truncated": "（最大トークン数で打ち切られました）",
    "models.switchConfig": "完成したら設定をこのモデルに切り替える", "models.registered": "登録先",
    "models.notSwitched": "設定は変更していません", "stage.skipped": "スキップ",
    "stage.skipped.unreachable": "スキップ：Ollama に接続できません", "stage.skipped.none": "スキップ：登録しない設定です",
    "errors.path_no_roots": "models.roots が設定されていないため、サーバーはモデルのパスを読めません。設定ファイル（{config}）の models.roots にモデルのあるフォルダーを追加してください。",
    "errors.path_outside_roots": "{path} は models.roots（{roots}）の外にあります。その中のパスを指定してください。",
    "errors.path_dotdot": "パス {path} に「..」が含まれています。models.roots の中のパスを「..」なしで指定してください。",
    "errors.path_malformed": "パスが空か、正しくありません。", "errors.path_missing": "{path} は存在しません。",
    "errors.path_not_allowed": "このパスは使えません。",
    "errors.upload_type_unsupported": "{name}：{ext} 形式には対応していません。対応形式：{allowed}",
    "errors.upload_too_large": "{name} はアップロードの上限（{limit_mb} MB、server.max_upload_mb）を超えています。",
    "errors.upload_nothing_ingested": "取り込めたファイルはありません：{reasons}",
    "errors.collection_not_found": "コレクション「{name}」はありません。",
    "errors.invalid_request": "リクエストが正しくありません：{details}", "errors.internal": "サーバー内部のエラーです（{type}）。サーバーのログを確認してください。",
    "errors.not_found": "見つかりません。", "errors.conflict": "現在の状態ではこの操作はできません。",
    "plan.fine-tune": "ファインチューン", "plan.model": "モデル",
    "plan.room_gpu": "GPU の空きは {gpu_free}", "plan.room_cpu": "GPU なし、RAM の空きは {ram_free}",
    "plan.plan_nothing_fits": "実行できる方法がありません：{room}、RAM の空きは {ram_free}{need}（コンテキスト {ctx}）",
    "plan.need_smallest": "。最小の {smallest} でも {smallest_size} 必要です",
    "plan.plan_ollama": "{path} は Ollama のモデルです。Ollama で実行します",
    "plan.plan_fits_first": "{what}は {label} で {size} 必要で、{room}。収まります",
    "plan.plan_fits_other": "{what}は {precision} では {full_size} 必要で、{room}。{label}（{size}、コンテキスト {ctx}）なら収まります",
    "place.gpu": "GPU のみ", "place.offload": "一部を CPU にオフロード", "place.cpu": "CPU",
    "errors.config": "設定が正しくありません。", "errors.plan": "このマシンで実行できる方法がありません。",
    "errors.generation": "言語モデルの読み込みか生成に失敗しました。", "errors.store": "文書ストアを開けないか、書き込めません。",
    "errors.ollama": "Ollama に接続できないか、エラーが返りました。", "errors.ingest": "文書を読み込めませんでした。",
    "errors.http_404": "見つかりません。", "errors.http_405": "この操作は許可されていません。",
    "errors.http_401": "トークンが必要です。", "errors.http_403": "この操作は許可されていません。",
    "errors.payload_too_large": "アップロードが大きすぎます（上限 {limit_mb} MB、server.max_upload_mb）。",
    "errors.body_too_large": "リクエストが大きすぎます（上限 {limit_mb} MB）。長い文章は文書としてアップロードしてください。",
    "errors.detail": "詳細",
  },
  en: {
    "tab.chat": "Chat", "tab.documents": "Documents", "tab.models": "Models",
    "token.button": "Token", "token.title": "API token",
    "token.help": "Changes (upload, delete, model builds) need the token. Opening the URL printed by `lorag serve` sets it automatically.",
    "token.cancel": "Cancel", "token.save": "Save", "token.saved": "Token saved",
    "token.needed": "This action needs the token",
    "chat.empty": "Ask a question about your documents. Answers cite their sources by number.",
    "chat.placeholder": "e.g. By when must expenses be claimed?", "chat.send": "Send",
    "chat.source": "Source", "chat.sources": "Sources", "chat.thinking": "Searching…", "chat.you": "You",
    "chat.page": "page", "chat.chars": "characters",
    "docs.upload": "Upload", "docs.uploadButton": "Upload and ingest", "docs.list": "Ingested documents",
    "docs.name": "Name", "docs.chunks": "Chunks", "docs.added": "Added", "docs.empty": "No documents yet.",
    "docs.delete": "Delete", "docs.reingest": "Re-ingest", "docs.confirmDelete": "Delete this document?",
    "docs.uploading": "Uploading…", "docs.ingesting": "Ingesting…", "docs.done": "Ingested",
    "docs.choose": "Choose files first", "docs.failed": "failed",
    "models.current": "Current model", "models.planning": "Working it out… (reading a large model takes a while)", "models.plan": "Plan for this machine", "models.build": "Build a GGUF from a LoRA",
    "models.loraPath": "LoRA adapter path", "models.quant": "Quantization", "models.mode": "Mode",
    "models.modeMerge": "Merge", "models.modeAdapter": "Adapter (applied at run time)", "models.name": "Name (optional)",
    "models.modeAuto": "Auto (build both, choose on behaviour)", "models.evalPrompts": "Eval prompts (optional, JSONL)",
    "models.agreement": "Greedy agreement", "models.identical": "Identical answers", "models.evalSource": "Eval prompts",
    "models.evalGeneric": "generic built-in prompts (the adapter has no evaluation lines)",
    "models.routeChoice": "Candidates", "models.candidate": "Candidate", "models.reason": "Why", "models.worst": "Least faithful answers",
    "models.reference": "Reference (unquantized)", "models.candidateAnswer": "This GGUF", "models.rule": "Rule: among candidates whose greedy agreement is within the tolerance of the best, the lowest KL wins",
    "models.start": "Start build", "models.cancel": "Cancel", "models.status": "Status", "models.history": "Job history",
    "models.created": "Created", "models.available": "Available models", "models.result": "Result",
    "models.size": "Size", "models.kl": "KL divergence (mean)", "models.top1": "Top-1 agreement",
    "models.gguf": "GGUF", "models.switched": "The config now uses the new model", "models.shared": "The same build is already running; showing it",
    "models.backend": "Backend", "models.model": "Model", "models.adapter": "Adapter", "models.context": "Context",
    "models.fits": "fits", "models.noFit": "does not fit", "models.needsBuild": "needs build", "models.chosen": "chosen",
    "models.ollamaDown": "Ollama is not reachable", "models.ollamaModels": "Ollama models", "models.noArtifacts": "No GGUF built yet.",
    "status.queued": "queued", "status.running": "running", "status.succeeded": "done", "status.failed": "failed", "status.cancelled": "cancelled",
    "stage.validate": "Validate", "stage.merge": "Merge", "stage.convert": "Convert to GGUF", "stage.quantize": "Quantize",
    "stage.verify": "Check fidelity", "stage.modelfile": "Modelfile", "stage.register": "Register", "stage.config": "Switch config",
    "error": "Error",
    "chat.collection": "Collection", "chat.allCollections": "All documents", "chat.newChat": "New conversation",
    "chat.cited": "cited in the answer", "chat.truncated": "(cut at the token limit)",
    "models.switchConfig": "Switch the config to this model when done", "models.registered": "Registered as",
    "models.notSwitched": "The config was not changed", "stage.skipped": "skipped",
    "stage.skipped.unreachable": "skipped: Ollama unreachable", "stage.skipped.none": "skipped: registration not requested",
    "errors.detail": "details",
  },
};

let LANG = localStorage.getItem("lorag-lang") || "ja";

function t(key) {
  return (MESSAGES[LANG] && MESSAGES[LANG][key]) || MESSAGES.ja[key] || key;
}

// t() with {name} placeholders filled from params.
function tf(key, params = {}) {
  return t(key).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// A server error in the page's language: its code's translation, else the server's (English) message.
// English speakers get the server's own message, which names the fix.
function errorText(err) {
  if (!err) return t("error");
  const key = "errors." + err.code;
  if (LANG !== "en" && err.code && MESSAGES[LANG][key]) return tf(key, err.params || {});
  return err.message || err.error || String(err);
}

function applyLanguage() {
  document.documentElement.lang = LANG;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  const toggle = document.getElementById("lang-toggle");
  if (toggle) toggle.textContent = LANG === "ja" ? "English" : "日本語";
}

function toggleLanguage() {
  LANG = LANG === "ja" ? "en" : "ja";
  localStorage.setItem("lorag-lang", LANG);
  applyLanguage();
  document.dispatchEvent(new Event("lorag:language"));
}
