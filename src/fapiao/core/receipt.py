"""Receipts (``fapiao-receipt/1``, docs/api.md) and their offline verifier.

A receipt is the entry bytes, its index, a signed tree head and the inclusion proof:
``{"format","log","index","entry","head":{"log","size","root","at","key_id"},"signature","proof"}``.
Anyone can check one with only ``cryptography`` and ``rfc8785`` installed::

    python -m fapiao.core.receipt verify RECEIPT.json --public-key KEYS.json [--json] [--lang zh|en]

Exit status: 0 valid, 1 invalid receipt, 2 usage error (missing file, unreadable key file).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from fapiao.core.canonical import canonical_bytes, parse_stamp
from fapiao.core.errors import FapiaoError
from fapiao.core.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from fapiao.core.signing import (
    HEAD_FIELDS,
    KeyRegistry,
    b64decode_strict,
    b64encode,
    load_public_keys,
    verify_head,
)

__all__ = ["FORMAT", "Verdict", "build_receipt", "main", "verify_receipt"]

FORMAT = "fapiao-receipt/1"
RECEIPT_FIELDS = ("format", "log", "index", "entry", "head", "signature", "proof")
ENTRY_FIELDS = frozenset({"v", "log", "seq", "kind", "at", "invoice", "ref"})
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# code -> (zh, en) message templates for failures.
_MESSAGES: dict[str, tuple[str, str]] = {
    "malformed": ("回执文件格式不正确：{detail}。", "The receipt is malformed: {detail}."),
    "bad_format": ("这不是 fapiao-receipt/1 格式的回执。", "This is not a fapiao-receipt/1 receipt."),
    "bad_base64": ("回执中的 {field} 不是有效的 Base64 编码。", "The receipt's {field} is not valid base64."),
    "unknown_key": (
        "签名密钥 {key_id} 不在受信任的公钥中，无法确认该树头。",
        "Signing key {key_id} is not among the trusted public keys.",
    ),
    "key_compromised": (
        "签名密钥 {key_id} 自 {since} 起已被标记为泄露，该树头（{at}）不可信。",
        "Signing key {key_id} is marked compromised since {since}; this head ({at}) is not trusted.",
    ),
    "bad_signature": (
        "签名树头的签名无效，回执可能被篡改。",
        "The signed tree head's signature is invalid; the receipt may have been altered.",
    ),
    "log_mismatch": (
        "回执、签名树头与条目所属的日志（商户）不一致：{detail}。",
        "The receipt, its head and its entry name different logs (merchants): {detail}.",
    ),
    "seq_mismatch": (
        "条目序号 {seq} 与回执中的位置 {index} 不符。",
        "The entry's seq {seq} does not match the receipt's index {index}.",
    ),
    "out_of_range": (
        "位置 {index} 不在大小为 {size} 的签名树头中。",
        "Index {index} is outside the signed tree head of size {size}.",
    ),
    "bad_proof": (
        "包含证明不成立：该条目不在此签名树头所代表的日志中。",
        "The inclusion proof fails: the entry is not in the log this signed head describes.",
    ),
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one receipt; ``code`` is ``ok`` or the first problem found."""

    ok: bool
    code: str
    message_zh: str
    message_en: str
    index: int | None = None
    size: int | None = None
    log: str | None = None
    entry: dict[str, Any] | None = None
    head: dict[str, Any] | None = None

    def message(self, lang: str = "zh") -> str:
        return self.message_en if lang == "en" else self.message_zh

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Reject(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def build_receipt(
    *, log: str, index: int, entry: bytes, head: Mapping[str, Any], signature: str, proof: Sequence[bytes]
) -> dict[str, Any]:
    """A ``fapiao-receipt/1`` dict, members in the documented order."""
    return {
        "format": FORMAT,
        "log": log,
        "index": index,
        "entry": b64encode(entry),
        "head": {name: head[name] for name in HEAD_FIELDS},
        "signature": signature,
        "proof": [b64encode(p) for p in proof],
    }


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _malformed(zh: str, en: str) -> _Reject:
    return _Reject("malformed", detail=(zh, en))


def _b64(text: str, field: str) -> bytes:
    try:
        return b64decode_strict(text)
    except FapiaoError:
        raise _Reject("bad_base64", field=field) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_shape(receipt: Any) -> None:
    if not isinstance(receipt, dict):
        raise _malformed("不是 JSON 对象", "not a JSON object")
    if "format" in receipt and receipt["format"] != FORMAT:
        raise _Reject("bad_format")
    if set(receipt) != set(RECEIPT_FIELDS):
        names = ", ".join(sorted(set(receipt) ^ set(RECEIPT_FIELDS)))
        raise _malformed(f"字段缺失或多余（{names}）", f"missing or extra members ({names})")
    head = receipt["head"]
    ok = (
        isinstance(receipt["log"], str)
        and _is_int(receipt["index"])
        and isinstance(receipt["entry"], str)
        and isinstance(receipt["signature"], str)
        and isinstance(receipt["proof"], list)
        and all(isinstance(p, str) for p in receipt["proof"])
        and isinstance(head, dict)
        and set(head) == set(HEAD_FIELDS)
        and all(isinstance(head[n], str) for n in ("log", "root", "at", "key_id"))
        and _is_int(head["size"])
    )
    if not ok:
        raise _malformed("字段类型不正确", "a member has the wrong type")
    try:
        parse_stamp(head["at"])
    except FapiaoError:
        raise _malformed("树头时间格式不正确", "the head's time is not a UTC stamp") from None


def _parse_entry(entry_bytes: bytes) -> dict[str, Any]:
    try:
        parsed = _loads(entry_bytes)
        canonical = isinstance(parsed, dict) and canonical_bytes(parsed) == entry_bytes
    except (ValueError, RecursionError, FapiaoError):
        raise _malformed("发票条目不是 JSON", "the entry is not JSON") from None
    if not canonical or not isinstance(parsed, dict):
        raise _malformed("发票条目不是规范 JSON（RFC 8785）", "the entry is not RFC 8785 canonical JSON")
    entry: dict[str, Any] = parsed
    if set(entry) != ENTRY_FIELDS or not _is_int(entry["v"]) or entry["v"] != 1 or not _is_int(entry["seq"]):
        raise _malformed("发票条目字段不正确", "the entry's members are wrong")
    if not isinstance(entry["log"], str) or not isinstance(entry["invoice"], dict):
        raise _malformed("发票条目字段不正确", "the entry's members are wrong")
    return entry


def _key_lookup(keys: KeyRegistry | Mapping[str, bytes], head: dict[str, Any]) -> bytes:
    key_id, at = head["key_id"], head["at"]
    if isinstance(keys, KeyRegistry):
        record = keys.get(key_id)
        if record is None:
            raise _Reject("unknown_key", key_id=key_id)
        if not record.trusts(at):
            raise _Reject("key_compromised", key_id=key_id, since=record.compromised_since or "?", at=at)
        return record.public_raw
    raw = keys.get(key_id)
    if not isinstance(raw, bytes):
        raise _Reject("unknown_key", key_id=key_id)
    return raw


def _check(receipt: dict[str, Any], keys: KeyRegistry | Mapping[str, bytes], seen: dict[str, Any]) -> None:
    head = receipt["head"]
    seen.update(index=receipt["index"], size=head["size"], log=head["log"], head=head)
    entry_bytes = _b64(receipt["entry"], "entry")
    root = _b64(head["root"], "head.root")
    _b64(receipt["signature"], "signature")
    proof = [_b64(p, f"proof[{i}]") for i, p in enumerate(receipt["proof"])]
    if len(root) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise _malformed("哈希长度不是 32 字节", "a hash is not 32 bytes long")
    public_raw = _key_lookup(keys, head)
    if not verify_head(head, receipt["signature"], public_raw):
        raise _Reject("bad_signature")
    if receipt["log"] != head["log"]:
        raise _Reject(
            "log_mismatch",
            detail=(
                f"回执 {receipt['log']}，树头 {head['log']}",
                f"receipt {receipt['log']}, head {head['log']}",
            ),
        )
    entry = _parse_entry(entry_bytes)
    seen["entry"] = entry
    if entry["log"] != head["log"]:
        raise _Reject(
            "log_mismatch",
            detail=(f"条目 {entry['log']}，树头 {head['log']}", f"entry {entry['log']}, head {head['log']}"),
        )
    index, size = receipt["index"], head["size"]
    if not 0 <= index < size:
        raise _Reject("out_of_range", index=index, size=size)
    if entry["seq"] != index:
        raise _Reject("seq_mismatch", seq=entry["seq"], index=index)
    if not verify_inclusion(leaf_hash(entry_bytes), index, size, proof, root):
        raise _Reject("bad_proof")


def _success(seen: dict[str, Any]) -> Verdict:
    index, size, head, entry = seen["index"], seen["size"], seen["head"], seen["entry"]
    number = entry["invoice"].get("number")
    number = number if isinstance(number, str) else "—"
    at = head["at"]
    beijing = parse_stamp(at).astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    zh = (
        f"该发票是日志第 {index} 条，已被大小为 {size} 的签名树头包含。"
        f"（条目序号从 0 起计。）发票号码 {number}，签名树头时间 {at}（北京时间 {beijing}）。"
    )
    en = (
        f"This invoice is entry {index} (counting from 0) of the log, included in the signed tree head "
        f"of size {size}. "
        f"Invoice number {number}; tree head signed at {at} (Beijing time {beijing})."
    )
    return Verdict(True, "ok", zh, en, index, size, head["log"], entry, head)


def _failure(reject: _Reject, seen: dict[str, Any]) -> Verdict:
    zh_t, en_t = _MESSAGES[reject.code]
    detail = reject.params.pop("detail", ("", ""))
    zh = zh_t.format(detail=detail[0], **reject.params)
    en = en_t.format(detail=detail[1], **reject.params)
    return Verdict(
        False,
        reject.code,
        zh,
        en,
        seen.get("index"),
        seen.get("size"),
        seen.get("log"),
        seen.get("entry"),
        seen.get("head"),
    )


def verify_receipt(data: bytes | str | Mapping[str, Any], keys: KeyRegistry | Mapping[str, bytes]) -> Verdict:
    """Check a receipt completely, offline.  Never raises on bad input: returns a :class:`Verdict`."""
    seen: dict[str, Any] = {}
    try:
        try:
            receipt = dict(data) if isinstance(data, Mapping) else _loads(data)
        except (ValueError, RecursionError, TypeError):
            raise _malformed("不是完整的 JSON（文件可能被截断）", "not complete JSON (truncated?)") from None
        _check_shape(receipt)
        _check(receipt, keys, seen)
    except _Reject as reject:
        return _failure(reject, seen)
    except Exception as exc:  # a verifier must answer, never crash
        return _failure(_malformed(f"无法检查（{type(exc).__name__}）", f"cannot be checked ({exc!r})"), seen)
    return _success(seen)


def _print(text: str, stream: Any) -> None:
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(errors="replace")
    print(text, file=stream)


def main(argv: Sequence[str] | None = None, *, keys: KeyRegistry | None = None) -> int:
    """``verify RECEIPT.json [--public-key FILE] [--json] [--lang zh|en]``; 0 valid, 1 invalid, 2 usage."""
    parser = argparse.ArgumentParser(
        prog="python -m fapiao.core.receipt", description="Verify a fapiao receipt."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify a fapiao-receipt/1 file offline")
    verify.add_argument("receipt", help="the receipt JSON file")
    verify.add_argument("--public-key", help="key registry JSON, PEM public key or base64 raw key")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.add_argument("--lang", choices=("zh", "en"), default="zh")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    zh = args.lang == "zh"
    try:
        data = Path(args.receipt).read_bytes()
    except OSError as exc:
        _print(
            f"无法读取回执文件 {args.receipt}：{exc.strerror}"
            if zh
            else f"Cannot read the receipt file {args.receipt}: {exc.strerror}",
            sys.stderr,
        )
        return 2
    if args.public_key:
        try:
            keys = load_public_keys(args.public_key)
        except FapiaoError as exc:
            _print(f"无法读取公钥文件 {args.public_key}。" if zh else str(exc), sys.stderr)
            return 2
    if keys is None:
        _print(
            "请用 --public-key 指定公钥文件（可从 /api/v1/ledger/public-keys 下载）。"
            if zh
            else "Give the public keys with --public-key (from /api/v1/ledger/public-keys).",
            sys.stderr,
        )
        return 2
    verdict = verify_receipt(data, keys)
    if args.json:
        _print(json.dumps(verdict.to_json(), ensure_ascii=False, indent=2), sys.stdout)
    elif verdict.ok:
        _print(("回执有效：" if zh else "VALID: ") + verdict.message(args.lang), sys.stdout)
    else:
        label = f"回执无效（{verdict.code}）：" if zh else f"INVALID ({verdict.code}): "
        _print(label + verdict.message(args.lang), sys.stdout)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
