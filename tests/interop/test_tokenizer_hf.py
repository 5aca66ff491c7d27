"""Promise 2: Tokenizer = HF.

`peft-tool tokenize --vocab tokenizer.json` against both Hugging Face implementations of
bert-base-uncased's tokenizer: `tokenizers` (Rust, Tokenizer.from_file(tokenizer.json)) and
transformers' pure-Python WordPiece (transformers 5 renamed it: `BertTokenizer` is now the
`tokenizers`-backed one, the slow Python class is
transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy, reading vocab.txt).
No truncation: whole lines compare. Sources: every line of SST-2 train and dev (the sentence
column), all 2,000 IMDB reviews, every WikiText-2 line (train, valid, test), and the
adversarial Unicode cases below. Target 100 % identical; a line where ours differs from a
reference is accepted only when the two references differ from each other there, and those
lines are listed.
"""
import sys
import unicodedata
from pathlib import Path

from interop_common import Checks, run, shared_data, shared_data_path, skip, tool

data = shared_data()
if data is None:
    skip(f"shared data absent ({shared_data_path()}): the tokenizer comparison needs SST-2, IMDB, WikiText-2 and the bert-base-uncased vocabulary")
tok_dir = data / "distilbert-base-uncased"
if not (tok_dir / "tokenizer.json").is_file():
    skip(f"{tok_dir}/tokenizer.json absent")

from tokenizers import Tokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

rust = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
rust.no_truncation()
rust.no_padding()
slow = BertTokenizerLegacy(str(tok_dir / "vocab.txt"), do_lower_case=True)
slow.model_max_length = 10**9  # no truncation, no length warning
print(f"references: tokenizers {sys.modules['tokenizers'].__version__} Tokenizer.from_file(tokenizer.json); "
      f"transformers {BertTokenizerLegacy.__module__}.BertTokenizerLegacy(vocab.txt, do_lower_case=True)")


def adversarial():
    """Cases that stress normalisation and pre-tokenisation (no newline in any: stdin is split on \\n)."""
    cases = [
        # str.lower() case mappings, context included
        "ΟΔΟΣ ΟΔΥΣΣΕΥΣ Σ ΣΣ ΑΣ. ΑΣ-ΒΣ ΑΣ1", "İstanbul İ i̇ KIRIKKALE", "ẞ Straße STRASSE", "ǅ ǈ ǋ ǲ Dž", "ﬁ ﬂ ﬀ ﬃ",
        "ΐ ΰ ᾼ ῌ ῼ", "Ⅻ ⅻ Ⓐ ⓐ", "𐐀𐐁 𝔄𝔅", "K Å Ω", "ʼn ǰ", "ΆΈΉΊΌΎΏ", "ÀÉÎÕÜ Ñ Ç",
        # combining marks and accents
        "cafe\u0301 e\u0301\u0302\u0303 \u0301alone a\u0308\u0304", "Ångström résumé naïve Zoë Dvořák",
        "q\u0323\u0307 \u1e0b\u0323 \u0958 \u0915\u093c", "a\u20dd b\u0489 \u0336strike", "ﾞ ﾟ ｶﾞ",
        # CJK and other scripts
        "我爱北京天安门 東京タワー 한국어 ｶﾀｶﾅ", "abc中文def", "𠀀𪛖 〇 〡 ㄅ ぁ", "ไทย ລາວ ខ្មែរ", "العربية עברית",
        "देवनागरी বাংলা தமிழ்", "丶㐀䶵 鿿 豈 﨎", "Ελληνικά Кириллица ЁЖЗ",
        # control and format characters
        "a\u200bb c\u200cd e\u200de f\u2060g", "x\u00ady soft\u00adhyphen", "\ufeffbom start", "rtl\u202eoverride\u202c end",
        "tab\there\x0bvt\x0cff", "nul\x00byte", "bell\x07 esc\x1b[0m del\x7f", "c1\x85\x9f ctl", "\u2028line\u2029para",
        "nbsp\u00a0thin\u2009ideo\u3000sp", "\ufff0\ufffd replacement \ufffe", "\U000e0041\U000e0001 tags", "\u180e mongolian",
        # full-width forms
        "ＦＵＬＬ－ｗｉｄｔｈ　ＡＢＣ！？１２３", "（括弧）【】「」", "￥￦￠",
        # emoji
        "😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ #️⃣", "emoji😀glued👍", "🇺🇸🇩🇪 flags",
        # punctuation and symbols
        "$100 € £ ¥ © ® ™ § ¶ † ‡ • … ‰ ′ ″", "«quotes» „low“ ‘single’", "a–b—c―d", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
        "¿¡ ¬ ¦ ¨ ª º ¹²³ ¼½¾", "∑∫√∞≠≈ ⊂⊃ ←→", "๏ ⸮ ⁂ ※",
        # long words
        "a" * 101, "supercalifragilisticexpialidocious" * 4, "x" * 100, "y" * 99 + " " + "z" * 250, "é" * 120,
        "un" + "believ" * 30 + "able", "1" * 150, "😀" * 120, "中" * 130,
        # whitespace shapes
        "", " ", "   leading and trailing   ", "multiple     spaces", "\t\t", "a\u0085b",
    ]
    return cases


def ours(lines):
    out = run([tool("peft-tool"), "tokenize", "--vocab", str(tok_dir / "tokenizer.json")], stdin="\n".join(lines) + "\n")
    rows = out.splitlines()
    return [[int(x) for x in r[1:-1].split(",")] if r != "[]" else [] for r in rows]


def sources():
    s = {}
    for split in ("train", "dev"):
        rows = (data / "sst2" / f"{split}.tsv").read_text(encoding="utf-8").split("\n")[1:]
        s[f"sst2/{split}"] = [r.rsplit("\t", 1)[0] for r in rows if r]
    reviews = sorted((data / "imdb" / "aclImdb").glob("*/*/*.txt"))
    lines = []
    for p in reviews:
        t = p.read_text(encoding="utf-8")
        lines += t.split("\n")  # a review is one line; any inner newline splits it as stdin would
    s[f"imdb ({len(reviews)} reviews)"] = lines
    for split in ("train", "valid", "test"):
        s[f"wikitext-2/{split}"] = (data / "wikitext-2" / f"wiki.{split}.tokens").read_text(encoding="utf-8").split("\n")[:-1]
    s["adversarial"] = adversarial()
    return s


c = Checks("interop.tokenizer_hf")
total = {"lines": 0, "both": 0}
for name, lines in sources().items():
    lines = [l[:-1] if l.endswith("\r") else l for l in lines]  # peft-tool drops one trailing \r, as getline users do
    mine = ours(lines)
    if len(mine) != len(lines):
        c.check(False, f"{name}: peft-tool gave {len(mine)} rows for {len(lines)} lines")
        continue
    r_ids = [e.ids for e in rust.encode_batch(lines)]
    s_ids = [slow.encode(l, add_special_tokens=True) for l in lines]
    eq_rust = sum(a == b for a, b in zip(mine, r_ids))
    eq_slow = sum(a == b for a, b in zip(mine, s_ids))
    refs_disagree = [i for i in range(len(lines)) if r_ids[i] != s_ids[i]]
    bad = [i for i in range(len(lines)) if (mine[i] != r_ids[i] or mine[i] != s_ids[i]) and r_ids[i] == s_ids[i]]
    total["lines"] += len(lines)
    total["both"] += sum(mine[i] == r_ids[i] == s_ids[i] for i in range(len(lines)))
    print(f"{name}: {len(lines)} lines; identical to tokenizers {eq_rust}, to BertTokenizerLegacy {eq_slow}; "
          f"references disagree on {len(refs_disagree)}")
    for i in refs_disagree:
        which = "tokenizers" if mine[i] == r_ids[i] else "BertTokenizerLegacy" if mine[i] == s_ids[i] else "neither"
        print(f"    references disagree, line {i + 1} (ours = {which}): {lines[i][:120]!r}")
        print(f"      tokenizers {r_ids[i][:40]}\n      slow       {s_ids[i][:40]}\n      ours       {mine[i][:40]}")
    for i in bad[:10]:
        print(f"    DIFFERS line {i + 1}: {lines[i][:200]!r}\n      HF   {r_ids[i][:60]}\n      ours {mine[i][:60]}")
    c.check(not bad, f"{name}: {len(bad)} lines where ours differs from both references while they agree")
print(f"all sources: {total['both']} of {total['lines']} lines identical to both references")
c.finish()
