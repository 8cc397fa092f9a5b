"""The QuickBooks sandbox's records and rules: customers, invoices, payments (no HTTP here).

Behaviour follows vendor-apis.md section 5. Where the reference is silent the choice is
marked [emu] (Intuit's real codes where we know them: 610 object not found, 2010 unsupported
property, 2020 required parameter missing, 2500 invalid reference, 6000 business rule):
- Every change bumps `SyncToken` (text, "0" first) and `MetaData.LastUpdatedTime` (whole
  seconds, shown in the company's time zone, -07:00 [emu: fixed offset]).
- Updates need `Id` and the current `SyncToken` (else 5010 "Stale Object Error");
  `sparse: true` changes only the fields sent, otherwise omitted fields are cleared.
- Customer `DisplayName` is unique across all customers, inactive ones too (6240); it
  defaults to CompanyName, else "GivenName FamilyName". Customers are never deleted:
  `Active: false` hides them from queries that do not ask for inactive ones.
- Invoices: at least one SalesItemLineDetail line, each with `Amount` (= Qty * UnitPrice
  when both are given, else 6070 [emu code]); a SubTotalLineDetail line is appended on every
  answer; TotalAmt is the sum of the lines (no tax [emu]); Balance is TotalAmt less the
  payments applied; DocNumber is numbered automatically when absent. An invoice with
  payments applied cannot be deleted [emu: 6000].
- Payments: `CustomerRef` and `TotalAmt` required; each line applies `Amount` to the invoice
  in `LinkedTxn` (TxnType Invoice) of the same customer, at most its Balance [emu: 6000];
  the rest is UnappliedAmt. Applying, changing or deleting a payment changes the invoice's
  Balance (and so its SyncToken and LastUpdatedTime).
- Deleting an invoice or payment leaves a tombstone that CDC reports
  ({"Id", "status": "Deleted", "domain": "QBO", "MetaData": {"LastUpdatedTime"}}).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.quickbooks import fakedata
from connectors.quickbooks.fakedata import money
from connectors.quickbooks.query import Condition, Query

ENTITIES = ("Customer", "Invoice", "Payment")
COMPANY_TZ = timezone(timedelta(hours=-7))
CDC_CAP = 1000
DEFAULT_ITEM = {"value": "1", "name": "Services"}  # [emu] what a line without ItemRef gets
ALLOWED = {
    "Customer": {"Id", "SyncToken", "sparse", "DisplayName", "GivenName", "FamilyName",
                 "CompanyName", "PrimaryEmailAddr", "PrimaryPhone", "BillAddr", "Active",
                 "Balance", "MetaData", "domain"},
    "Invoice": {"Id", "SyncToken", "sparse", "DocNumber", "TxnDate", "DueDate", "CustomerRef",
                "CurrencyRef", "Line", "TotalAmt", "Balance", "LinkedTxn", "MetaData",
                "domain"},
    "Payment": {"Id", "SyncToken", "sparse", "TxnDate", "CustomerRef", "TotalAmt",
                "UnappliedAmt", "Line", "MetaData", "domain"},
}
READ_ONLY = {"Customer": ("Balance",), "Invoice": ("TotalAmt", "Balance", "LinkedTxn"),
             "Payment": ("UnappliedAmt",)}


class Fault(Exception):
    """One QBO validation fault: code, Message, Detail, element."""

    def __init__(self, code: str, message: str, detail: str = "", element: str = "") -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail, self.element = code, message, detail, element

    def body(self) -> dict[str, Any]:
        """The Fault object of an answer or a batch item."""
        return {"Error": [{"Message": self.message, "Detail": self.detail or self.message,
                           "code": self.code, "element": self.element}],
                "type": "ValidationFault"}


def iso(seconds: float, *, ms: bool = False) -> str:
    """An epoch time in the company's zone, as QBO writes times ("...T10:00:00-07:00")."""
    moment = datetime.fromtimestamp(seconds, COMPANY_TZ)
    return moment.isoformat(timespec="milliseconds" if ms else "seconds")


def parse_time(text: str) -> float:
    """QBO time text (any offset, or a bare date meaning midnight UTC) as epoch seconds."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _missing(element: str) -> Fault:
    return Fault("2020", "Required param missing, need to supply the required value for the "
                 "API", f"Required parameter {element} is missing in the request", element)


def _number(value: Any, element: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"{element} must be a number", element)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"{element} must be a number, got {value!r}", element) from None
    if not number.is_finite():
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"{element} must be a finite number", element)
    return number


def _date(value: Any, element: str) -> str:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"{element} must be a date like 2024-05-01, got {value!r}",
                    element) from None


def _ref(value: Any, element: str) -> str:
    if not isinstance(value, Mapping) or value.get("value") in (None, ""):
        raise _missing(element)
    return str(value["value"])


def _get(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class QboStore:
    """Everything one QBO company (realm) holds; callers hold the sandbox lock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.records: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.times: dict[str, dict[str, tuple[int, int]]] = {e: {} for e in ENTITIES}
        self.tombstones: dict[str, dict[str, int]] = {e: {} for e in ENTITIES}
        self.next_id = 1
        self.next_doc = 1001
        self.changes: list[tuple[str, str, str, int]] = []  # (entity, id, operation, at)
        self.recording = False
        self._now: int | None = None  # the time of the change being made (load: generated)

    # -- loading ---------------------------------------------------------------------------

    def load(self, data: fakedata.FakeData) -> None:
        """Insert generated records through the same rules the API applies."""
        customers = []
        for customer, at in data.customers:
            self._now = at
            customers.append(self.create("Customer", dict(customer))["Id"])
        invoices = []
        for invoice, at in data.invoices:
            self._now = at
            body = {**invoice, "CustomerRef": {"value": customers[invoice["CustomerRef"]
                                                                  ["value"]]}}
            invoices.append(self.create("Invoice", body)["Id"])
        for payment, at in data.payments:
            self._now = min(at, fakedata.EPOCH_END - 1)
            invoice = self.records["Invoice"][invoices[payment["invoice"]]]
            amount = money(invoice["Balance"] * payment["part"])
            self.create("Payment", {
                "TxnDate": fakedata.day_of(self._now), "CustomerRef": invoice["CustomerRef"],
                "TotalAmt": amount, "Line": [{"Amount": amount, "LinkedTxn": [
                    {"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})
        self._now = None

    # -- reads -----------------------------------------------------------------------------

    def public(self, entity: str, rid: str) -> dict[str, Any]:
        """A stored record as the API shows it."""
        record = copy.deepcopy(self.records[entity][rid])
        record.pop("_applied", None)
        if entity == "Customer":
            record["Balance"] = self._customer_balance(rid)
        created, updated = self.times[entity][rid]
        record["MetaData"] = {"CreateTime": iso(created), "LastUpdatedTime": iso(updated)}
        if entity == "Invoice":
            record["Line"].append({"Amount": record["TotalAmt"],
                                   "DetailType": "SubTotalLineDetail",
                                   "SubTotalLineDetail": {}})
        return record

    def tombstone(self, entity: str, rid: str) -> dict[str, Any]:
        """What CDC shows of a deleted record."""
        return {"Id": rid, "status": "Deleted", "domain": "QBO",
                "MetaData": {"LastUpdatedTime": iso(self.tombstones[entity][rid])}}

    def query(self, q: Query) -> list[dict[str, Any]] | int:
        """The records (or the COUNT) a parsed query selects, in its order and window."""
        if q.entity not in ENTITIES:
            raise Fault("4000", "Error parsing query",
                        f"QueryParserError: Invalid entity name {q.entity!r}")
        where = list(q.where)
        if q.entity == "Customer" and not q.mentions("Active"):
            where.append(Condition("Active", "=", (True,)))  # inactive ones are hidden
        tests = [self._test(q.entity, c) for c in where]
        records = self.records[q.entity]
        chosen = [rid for rid, rec in records.items()
                  if all(test(rid, rec) for test in tests)]
        if q.count:
            return len(chosen)
        key = self._order_key(q.entity, q.order)
        chosen.sort(key=key)
        window = chosen[q.start - 1: q.start - 1 + q.max_results]
        return [self.public(q.entity, rid) for rid in window]

    def _order_key(self, entity: str, order: tuple[tuple[str, bool], ...]) -> Callable[
            [str], Any]:
        times = self.times[entity]
        records = self.records[entity]
        if not order:
            return lambda rid: int(rid)  # [emu] no ORDERBY: by Id
        field, desc = order[0]
        sign = -1 if desc else 1
        if field.lower() in ("metadata.lastupdatedtime", "metadata.createtime"):
            slot = 1 if field.lower().endswith("lastupdatedtime") else 0
            # [emu] ties (the same second) are ordered by Id, so paging inside a second is stable
            return lambda rid: (sign * times[rid][slot], sign * int(rid))
        return lambda rid: (str(_get(records[rid], field) or "").lower(), int(rid))

    def _test(self, entity: str, cond: Condition) -> Callable[[str, dict[str, Any]], bool]:
        field = cond.field
        times = self.times[entity]
        lowered = field.lower()
        if lowered in ("metadata.lastupdatedtime", "metadata.createtime"):
            slot = 1 if lowered.endswith("lastupdatedtime") else 0
            try:
                wanted = [parse_time(str(v)) for v in cond.values]
            except ValueError:
                raise Fault("4000", "Error parsing query", f"QueryParserError: {field} needs a "
                            f"date-time like '2024-05-01T10:00:00-07:00'") from None
            return lambda rid, rec: _compare(times[rid][slot], cond.op, wanted)
        if lowered == "id":
            ids = [str(v) for v in cond.values]
            return lambda rid, rec: _compare(int(rid), cond.op, [int(i) if i.isdigit() else -1
                                                                for i in ids])
        return lambda rid, rec: _compare(_get(rec, field), cond.op, list(cond.values))

    def cdc(self, entities: list[str], since: float, *, cap: int = CDC_CAP) -> tuple[
            dict[str, list[dict[str, Any]]], bool]:
        """Changed and deleted objects since a time, oldest first, at most `cap` in all."""
        found: list[tuple[int, str, str, bool]] = []
        for entity in entities:
            for rid, (_created, updated) in self.times[entity].items():
                if updated >= since:
                    found.append((updated, entity, rid, False))
            for rid, at in self.tombstones[entity].items():
                if at >= since:
                    found.append((at, entity, rid, True))
        found.sort(key=lambda f: (f[0], ENTITIES.index(f[1]), int(f[2])))
        capped = len(found) > cap
        out: dict[str, list[dict[str, Any]]] = {e: [] for e in entities}
        for _at, entity, rid, gone in found[:cap]:
            out[entity].append(self.tombstone(entity, rid) if gone
                               else self.public(entity, rid))
        return out, capped

    # -- writes ----------------------------------------------------------------------------

    def create(self, entity: str, body: Any) -> dict[str, Any]:
        """Create one record; the stored record as the API shows it."""
        fields = self._fields(entity, body)
        fields.pop("Id", None)
        fields.pop("SyncToken", None)
        fields.pop("sparse", None)
        rid = str(self.next_id)
        record = self._validate(entity, fields, rid, None)
        self.next_id += 1
        record["Id"], record["SyncToken"] = rid, "0"
        self.records[entity][rid] = record
        now = self._stamp()
        self.times[entity][rid] = (now, now)
        self._after_write(entity, rid, None)
        self._record_change(entity, rid, "Create")
        return self.public(entity, rid)

    def update(self, entity: str, body: Any) -> dict[str, Any]:
        """Update one record (full or sparse) after the SyncToken check."""
        fields = self._fields(entity, body)
        rid, current = self._current(entity, fields)
        sparse = fields.pop("sparse", False) is True
        fields.pop("Id")
        fields.pop("SyncToken")
        merged = {**current, **fields} if sparse else {
            k: v for k, v in current.items() if k in READ_ONLY[entity]} | fields
        merged.pop("Id", None)
        merged.pop("SyncToken", None)
        before = copy.deepcopy(current)
        record = self._validate(entity, merged, rid, before)
        record["Id"], record["SyncToken"] = rid, str(int(current["SyncToken"]) + 1)
        self.records[entity][rid] = record
        self._touch(entity, rid)
        self._after_write(entity, rid, before)
        self._record_change(entity, rid, "Update")
        return self.public(entity, rid)

    def delete(self, entity: str, body: Any) -> dict[str, Any]:
        """Delete an invoice or payment ({Id, SyncToken}); customers cannot be deleted."""
        if entity == "Customer":
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", "Customers cannot be deleted: make them inactive "
                        "(Active: false)")
        fields = self._fields(entity, body)
        rid, current = self._current(entity, fields)
        if entity == "Invoice" and current.get("LinkedTxn"):
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", "This invoice has payments applied: delete or change "
                        "the payments first")  # [emu]
        if entity == "Payment":
            self._unapply(current)
        del self.records[entity][rid]
        del self.times[entity][rid]
        self.tombstones[entity][rid] = self._stamp()
        self._record_change(entity, rid, "Delete")
        return {"Id": rid, "status": "Deleted", "domain": "QBO"}

    def touch(self, entity: str, rid: str, **fields: Any) -> dict[str, Any]:
        """A QBO user's edit (sparse, no SyncToken check); the record as the API shows it."""
        current = self.records[entity][rid]
        return self.update(entity, {**fields, "Id": rid, "SyncToken": current["SyncToken"],
                                    "sparse": True})

    # -- rules -----------------------------------------------------------------------------

    def _fields(self, entity: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"the {entity} must be a JSON object")
        unknown = sorted(set(body) - ALLOWED[entity])
        if unknown:
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"Property Name:{unknown[0]} specified is unsupported or invalid",
                        unknown[0])
        fields = copy.deepcopy(body)
        fields.pop("MetaData", None)
        fields.pop("domain", None)
        return fields

    def _current(self, entity: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        rid = fields.get("Id")
        if rid in (None, ""):
            raise _missing("Id")
        rid = str(rid)
        if fields.get("SyncToken") in (None, ""):
            raise _missing("SyncToken")
        current = self.records[entity].get(rid)
        if current is None:
            raise Fault("610", "Object Not Found", f"Object Not Found : Something you're trying "
                        f"to use has been made inactive. Check the fields with accounts, "
                        f"customers, items, vendors or employees. ({entity} {rid})", "Id")
        if str(fields["SyncToken"]) != current["SyncToken"]:
            raise Fault("5010", "Stale Object Error", f"Stale Object Error : You and "
                        f"{self.user} were working on this at the same time. {self.user} "
                        f"finished before you did, so your work was not saved.")
        return rid, current

    user = "sandbox.user@example.com"

    def _validate(self, entity: str, fields: dict[str, Any], rid: str,
                  before: dict[str, Any] | None) -> dict[str, Any]:
        if entity == "Customer":
            return self._customer(fields, rid)
        if entity == "Invoice":
            return self._invoice(fields, before)
        return self._payment(fields, before)

    def _customer(self, fields: dict[str, Any], rid: str) -> dict[str, Any]:
        for key in ("DisplayName", "GivenName", "FamilyName", "CompanyName"):
            if fields.get(key) is not None and not isinstance(fields[key], str):
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"{key} must be text", key)
        display = (fields.get("DisplayName") or "").strip() or (fields.get("CompanyName")
                                                                or "").strip()
        if not display:
            display = " ".join(p for p in (fields.get("GivenName"), fields.get("FamilyName"))
                               if p).strip()
        if not display:
            raise _missing("DisplayName")
        for other_id, other in self.records["Customer"].items():
            if other_id != rid and other["DisplayName"].lower() == display.lower():
                raise Fault("6240", "Duplicate Name Exists Error",
                            f"The name supplied already exists. : Another customer, vendor or "
                            f"employee is already using this name. Please use a different "
                            f"name. (Id={other_id})", "DisplayName")
        record = {**fields, "DisplayName": display}
        record["Active"] = fields.get("Active") is not False
        record.pop("Balance", None)  # computed from the invoices when shown
        for key in ("PrimaryEmailAddr", "PrimaryPhone", "BillAddr"):
            if record.get(key) is not None and not isinstance(record[key], dict):
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"{key} must be an object", key)
        return record

    def _customer_balance(self, rid: str) -> Decimal:
        return sum((inv["Balance"] for inv in self.records["Invoice"].values()
                    if inv["CustomerRef"]["value"] == rid), Decimal(0))

    def _live_customer(self, ref: Any, element: str) -> dict[str, Any]:
        cid = _ref(ref, element)
        customer = self.records["Customer"].get(cid)
        if customer is None or not customer["Active"]:
            raise Fault("2500", "Invalid Reference Id", f"Invalid Reference Id : Something "
                        f"you're trying to use has been made inactive or deleted: Customer "
                        f"{cid}", element)
        return customer

    def _invoice(self, fields: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
        customer = self._live_customer(fields.get("CustomerRef"), "CustomerRef")
        lines_in = fields.get("Line")
        if not isinstance(lines_in, list):
            raise _missing("Line")
        lines: list[dict[str, Any]] = []
        for n, line in enumerate(lines_in):
            if not isinstance(line, dict):
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"Line {n} must be an object", "Line")
            if line.get("DetailType") == "SubTotalLineDetail":
                continue  # computed by QBO; what a client sends back is ignored
            if line.get("DetailType") != "SalesItemLineDetail":
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"Line {n}: DetailType must be SalesItemLineDetail",
                            "Line.DetailType")
            lines.append(self._sales_line(line, n, len(lines) + 1))
        if not lines:
            raise _missing("Line")
        total = sum((line["Amount"] for line in lines), Decimal(0))
        applied = sum((p["Amount"] for p in (before or {}).get("_applied", [])), Decimal(0))
        if total < applied:
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", f"The invoice total {total} is less than the "
                        f"{applied} already paid")  # [emu]
        txn = _date(fields["TxnDate"], "TxnDate") if fields.get("TxnDate") \
            else fakedata.day_of(self._stamp())
        due = _date(fields["DueDate"], "DueDate") if fields.get("DueDate") else (
            datetime.strptime(txn, "%Y-%m-%d").date() + timedelta(days=30)).isoformat()
        doc = fields.get("DocNumber")
        if doc in (None, ""):
            doc = str(self.next_doc)
            self.next_doc += 1
        elif str(doc).isdigit():
            self.next_doc = max(self.next_doc, int(str(doc)) + 1)
        currency = fields.get("CurrencyRef") or {"value": fakedata.CURRENCY}
        record = {"DocNumber": str(doc), "TxnDate": txn, "DueDate": due,
                  "CustomerRef": {"value": customer_id(customer),
                                  "name": customer["DisplayName"]},
                  "CurrencyRef": currency, "Line": lines, "TotalAmt": total,
                  "Balance": total - applied,
                  "LinkedTxn": copy.deepcopy((before or {}).get("LinkedTxn", [])),
                  "_applied": copy.deepcopy((before or {}).get("_applied", []))}
        return record

    def _sales_line(self, line: dict[str, Any], n: int, num: int) -> dict[str, Any]:
        detail = line.get("SalesItemLineDetail") or {}
        if not isinstance(detail, dict):
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"Line {n}: SalesItemLineDetail must be an object", "Line")
        if line.get("Amount") is None:
            raise _missing("Line.Amount")
        amount = money(_number(line["Amount"], "Line.Amount"))
        qty = detail.get("Qty")
        price = detail.get("UnitPrice")
        if qty is not None and price is not None:
            expected = money(_number(qty, "Qty") * _number(price, "UnitPrice"))
            if expected != amount:
                raise Fault("6070", "Amount is not equal to UnitPrice * Qty",
                            f"Line {n}: Amount {amount} is not equal to UnitPrice * Qty "
                            f"({expected})", "Line.Amount")
        out_detail = {"ItemRef": detail.get("ItemRef") or dict(DEFAULT_ITEM),
                      "TaxCodeRef": detail.get("TaxCodeRef") or {"value": "NON"}}
        if qty is not None:
            out_detail["Qty"] = _number(qty, "Qty")
        if price is not None:
            out_detail["UnitPrice"] = _number(price, "UnitPrice")
        return {"Id": str(num), "LineNum": num, "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "Description": str(line.get("Description") or ""),
                "SalesItemLineDetail": out_detail}

    def _payment(self, fields: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
        customer = self._live_customer(fields.get("CustomerRef"), "CustomerRef")
        if fields.get("TotalAmt") is None:
            raise _missing("TotalAmt")
        total = money(_number(fields["TotalAmt"], "TotalAmt"))
        if total < 0:
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", "TotalAmt cannot be negative", "TotalAmt")
        lines: list[dict[str, Any]] = []
        for n, line in enumerate(fields.get("Line") or []):
            if not isinstance(line, dict) or line.get("Amount") is None:
                raise _missing("Line.Amount")
            linked = line.get("LinkedTxn")
            if not isinstance(linked, list) or not linked or not isinstance(linked[0], dict):
                raise _missing("Line.LinkedTxn")
            target = linked[0]
            if target.get("TxnType") != "Invoice":
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"Line {n}: LinkedTxn TxnType must be Invoice", "LinkedTxn")
            lines.append({"Amount": money(_number(line["Amount"], "Line.Amount")),
                          "LinkedTxn": [{"TxnId": str(target.get("TxnId")),
                                         "TxnType": "Invoice"}]})
        applied = sum((line["Amount"] for line in lines), Decimal(0))
        if applied > total:
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", f"The amounts applied ({applied}) exceed the payment "
                        f"TotalAmt ({total})", "Line.Amount")
        refund = {line["LinkedTxn"][0]["TxnId"]: line["Amount"]
                  for line in (before or {}).get("Line", [])}
        for line in lines:
            iid = line["LinkedTxn"][0]["TxnId"]
            invoice = self.records["Invoice"].get(iid)
            if invoice is None or invoice["CustomerRef"]["value"] != customer_id(customer):
                raise Fault("2500", "Invalid Reference Id", f"Invalid Reference Id : Invoice "
                            f"{iid} is not an invoice of customer {customer_id(customer)}",
                            "LinkedTxn.TxnId")
            open_amount = invoice["Balance"] + refund.get(iid, Decimal(0))
            if line["Amount"] > open_amount:
                raise Fault("6000", "A business validation error has occurred while "
                            "processing your request", f"The amount applied ({line['Amount']})"
                            f" exceeds the balance of invoice {iid} ({open_amount})",
                            "Line.Amount")  # [emu]
        txn = _date(fields["TxnDate"], "TxnDate") if fields.get("TxnDate") \
            else fakedata.day_of(self._stamp())
        return {"TxnDate": txn, "CustomerRef": {"value": customer_id(customer),
                                                "name": customer["DisplayName"]},
                "TotalAmt": total, "UnappliedAmt": total - applied, "Line": lines}

    def _after_write(self, entity: str, rid: str, before: dict[str, Any] | None) -> None:
        if entity != "Payment":
            return
        if before is not None:
            self._unapply({**before, "Id": rid})
        payment = self.records["Payment"][rid]
        for line in payment["Line"]:
            invoice = self.records["Invoice"][line["LinkedTxn"][0]["TxnId"]]
            invoice["_applied"].append({"payment": rid, "Amount": line["Amount"]})
            self._settle(invoice)

    def _unapply(self, payment: dict[str, Any]) -> None:
        for line in payment.get("Line", []):
            invoice = self.records["Invoice"].get(line["LinkedTxn"][0]["TxnId"])
            if invoice is not None:
                invoice["_applied"] = [a for a in invoice["_applied"]
                                       if a["payment"] != payment["Id"]]
                self._settle(invoice)

    def _settle(self, invoice: dict[str, Any]) -> None:
        applied = invoice["_applied"]
        invoice["Balance"] = invoice["TotalAmt"] - sum((a["Amount"] for a in applied),
                                                       Decimal(0))
        invoice["LinkedTxn"] = [{"TxnId": a["payment"], "TxnType": "Payment"} for a in applied]
        invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
        self._touch("Invoice", invoice["Id"])
        self._record_change("Invoice", invoice["Id"], "Update")

    def _stamp(self) -> int:
        return self._now if self._now is not None else int(self.clock())

    def _touch(self, entity: str, rid: str) -> None:
        created, _ = self.times[entity][rid]
        self.times[entity][rid] = (created, self._stamp())

    def _record_change(self, entity: str, rid: str, operation: str) -> None:
        if self.recording:
            self.changes.append((entity, rid, operation, self._stamp()))


def customer_id(customer: Mapping[str, Any]) -> str:
    """A stored customer's Id."""
    return str(customer["Id"])


def _compare(value: Any, op: str, wanted: list[Any]) -> bool:
    """One condition on one value; QBO compares text without regard to case [emu]."""
    if value is None:
        return False
    if isinstance(value, bool) or any(isinstance(w, bool) for w in wanted):
        value, wanted = str(value).lower(), [str(w).lower() for w in wanted]
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        try:
            value, wanted = Decimal(str(value)), [Decimal(str(w)) for w in wanted]
        except InvalidOperation:
            return False
    else:
        value, wanted = str(value).lower(), [str(w).lower() for w in wanted]
    if op == "IN":
        return value in wanted
    target = wanted[0]
    if op == "LIKE":
        return _like(str(value), str(target))
    if op == "=":
        return bool(value == target)
    try:
        if op == "<":
            return bool(value < target)
        if op == ">":
            return bool(value > target)
        if op == "<=":
            return bool(value <= target)
        return bool(value >= target)
    except TypeError:
        return False


def _like(value: str, pattern: str) -> bool:
    """SQL LIKE with % only (QBO supports no _ wildcard)."""
    parts = pattern.split("%")
    if len(parts) == 1:
        return value == pattern
    if not value.startswith(parts[0]) or not value.endswith(parts[-1]):
        return False
    pos = len(parts[0])
    for middle in parts[1:-1]:
        found = value.find(middle, pos)
        if found < 0:
            return False
        pos = found + len(middle)
    return pos <= len(value) - len(parts[-1])
