"""`hub map preview`: a native record -> canonical -> native again, with validation."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import invoke, run_hub

RECORD = {"id": "c9", "first_name": " Ada ", "last_name": "Lovelace",
          "email": " ADA@Example.com", "phone": "+442071234567", "tags": "vip;london",
          "country": "United Kingdom"}


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_preview_shows_canonical_and_native_again(tmp_path: Path) -> None:
    rec = _write(tmp_path, "rec.json", RECORD)
    res = run_hub("map", "preview", "spreadsheet/contact", "--input", str(rec), cwd=tmp_path)
    assert res.code == 0, str(res)
    assert "record c9 -> canonical contact:" in res.out
    assert "validation: valid" in res.out
    assert "canonical -> spreadsheet contacts again:" in res.out
    assert '"address": "ada@example.com"' in res.out

    data = json.loads(invoke("map", "preview", "spreadsheet/contact", "--input", str(rec),
                             "--json").out)
    assert data["external_id"] == "c9"
    assert data["validation"] == "valid"
    canonical = data["canonical"]
    assert canonical["first_name"] == "Ada"
    assert canonical["emails"] == [{"type": "work", "address": "ada@example.com"}]
    assert canonical["phones"] == [{"type": "work", "number": "+442071234567"}]
    assert canonical["tags"] == ["vip", "london"]
    assert canonical["addresses"] == [{"type": "work", "country": "GB"}]
    back = data["native_again"]
    assert back["email"] == "ada@example.com" and back["first_name"] == "Ada"
    assert back["tags"] == "vip;london" and back["phone"] == "+442071234567"


def test_preview_of_an_invalid_record_exits_1_with_the_reason(tmp_path: Path) -> None:
    bad_phone = _write(tmp_path, "bad.json", {"id": "c9", "phone": "notaphone"})
    res = run_hub("map", "preview", "spreadsheet/contact", "--input", str(bad_phone),
                  cwd=tmp_path)
    assert res.code == 1, str(res)
    assert "record c9" in res.err and "phones[type=work].number" in res.err
    assert "notaphone" in res.err

    bad_email = _write(tmp_path, "email.json", {"id": "c8", "email": "not-an-email"})
    res = invoke("map", "preview", "spreadsheet/contact", "--input", str(bad_email))
    assert res.code == 1, str(res)
    assert "validation: emails[0].address:" in res.out and "not-an-email" in res.out


def test_preview_names_a_missing_mapping_or_a_bad_input(tmp_path: Path) -> None:
    rec = _write(tmp_path, "rec.json", RECORD)
    missing = invoke("map", "preview", "nosuch/contact", "--input", str(rec))
    assert missing.code == 2
    assert "cannot find mapping 'nosuch/contact'" in missing.err
    not_json = tmp_path / "x.json"
    not_json.write_text("id,name\n", encoding="utf-8")
    res = invoke("map", "preview", "spreadsheet/contact", "--input", str(not_json))
    assert res.code == 2
    assert f"{not_json}: not a JSON record" in res.err
