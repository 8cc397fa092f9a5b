"""The Xero sandbox's records and rules: contacts, invoices, payments (no HTTP in here).

Behaviour follows vendor-apis.md section 2. Where the reference is silent the choice is
marked [emu]:
- PUT creates only: an element carrying an existing id is refused [emu: message]. POST
  creates or updates; it matches ContactID, InvoiceID, or an InvoiceNumber of the same Type.
- summarizeErrors=false: 200 with every element echoed, failed ones with ValidationErrors,
  HasErrors (invoices) / HasValidationErrors (contacts, payments) and
  StatusAttributeString "ERROR". Otherwise one failed element refuses the whole batch: 400
  ValidationException with Elements, nothing saved.
- Contacts: Name required and unique among active contacts; EmailAddress must look valid;
  IsCustomer/IsSupplier and Website are read only (Xero derives the first two from
  invoices: an ACCREC invoice makes the contact a customer, ACCPAY a supplier).
- Invoices: totals, tax (15% for OUTPUT/INPUT [emu rate]) and AmountDue are computed;
  DELETED only from DRAFT/SUBMITTED, VOIDED only from AUTHORISED without payments, PAID
  only through payments; a paid, voided or deleted invoice cannot be edited. Listing
  returns every status, DELETED included [emu]. An unpaged invoice list omits LineItems.
- Payments: against an AUTHORISED invoice, at most its AmountDue, to a known bank account
  (Code 090/091); they cannot be changed, only deleted (POST /Payments/{id}
  {"Status": "DELETED"}), which puts the amount back on the invoice.
- If-Modified-Since matches UpdatedDateUTC >= the header's second [emu]; with it (or
  includeArchived=true) archived contacts are listed too.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.xero import fakedata
from connectors.xero.fakedata import BANK_ACCOUNTS, BASE_CURRENCY, TAX_RATES, money, ms_date

OBJECTS = ("Contacts", "Invoices", "Payments")
ID_FIELD = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID"}
FLAG_FIELD = {"Contacts": "HasValidationErrors", "Invoices": "HasErrors",
              "Payments": "HasValidationErrors"}
CATEGORY = {"Contacts": "CONTACT", "Invoices": "INVOICE"}
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
CONTACT_TEXT = ("ContactNumber", "AccountNumber", "Name", "FirstName", "LastName",
                "EmailAddress", "TaxNumber", "BankAccountDetails", "SkypeUserName")
PHONE_TYPES = ("DEFAULT", "DDI", "MOBILE", "FAX")
ADDRESS_TYPES = ("POBOX", "STREET", "DELIVERY")
INVOICE_TYPES = ("ACCREC", "ACCPAY")
EDITABLE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
DAY_MS = 86_400_000


class Refused(Exception):
    """One element is refused; the messages go into its ValidationErrors."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class NotFound(Exception):
    """The record named in the URL does not exist (404)."""


def parse_date_ms(value: Any) -> int | None:
    """A request date ("/Date(ms+0000)/", "2024-01-15" or ISO datetime) as epoch ms."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    match = _MS_DATE.fullmatch(text)
    if match:
        return int(match.group(1))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(f"'{value}' is not a valid date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _day(ms: int) -> int:
    return ms - ms % DAY_MS


def _date_string(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise Refused(f"{name} must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise Refused(f"{name} must be a number, got '{value}'") from None


class XeroStore:
    """Everything one Xero organisation holds; callers hold the sandbox lock."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.records: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in OBJECTS}
        self.meta: dict[str, dict[str, list[int]]] = {o: {} for o in OBJECTS}  # [ms, seq]
        self.seq = 0
        self.next_number = 1
        self.changes: list[dict[str, Any]] = []  # webhook events not yet delivered
        self.recording = False
        self.loading = False

    # -- loading --------------------------------------------------------------------------

    def load(self, data: fakedata.FakeData) -> None:
        """Insert generated records through the same rules the API applies."""
        for contact, at in data.contacts:
            self._insert("Contacts", dict(contact), at)
        self.loading = True  # generated records bring their own ids
        for invoice, at in data.invoices:
            final = invoice["Status"]
            raw = {**invoice, "Date": ms_date(invoice["Date"]),
                   "DueDate": ms_date(invoice["DueDate"]),
                   "Status": "AUTHORISED" if final == "PAID" else final}
            if final in ("VOIDED", "DELETED"):
                raw["Status"] = "AUTHORISED" if final == "VOIDED" else "DRAFT"
            self._upsert_invoice("PUT", raw, at)
            if final in ("VOIDED", "DELETED"):
                self._set_status(self.records["Invoices"][invoice["InvoiceID"]], final)
            self.next_number = max(self.next_number, self._number_of(invoice) + 1)
        self.loading = False
        for payment, at in data.payments:
            invoice = self.records["Invoices"][payment["Invoice"]["InvoiceID"]]
            amount = invoice["AmountDue"] if payment["Amount"] is None \
                else money(invoice["Total"] * Decimal("0.4"))
            self._create_payment({**payment, "Amount": amount,
                                  "Date": ms_date(payment["Date"])}, at)

    @staticmethod
    def _number_of(invoice: Mapping[str, Any]) -> int:
        text = str(invoice.get("InvoiceNumber") or "")
        return int(text[4:]) if text.startswith("INV-") and text[4:].isdigit() else 0

    # -- reads ----------------------------------------------------------------------------

    def list_records(self, object: str, *, page: int | None, page_size: int | None,
             since_ms: int | None, include_archived: bool, order: str | None,
             filters: Mapping[str, set[str]]) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
        """The records a GET /{object} returns, and the pagination object when paged."""
        meta = self.meta[object]
        items = []
        for rid, record in self.records[object].items():
            if since_ms is not None and meta[rid][0] < since_ms:
                continue
            if object == "Contacts" and record["ContactStatus"] == "ARCHIVED" \
                    and not include_archived and since_ms is None:
                continue
            if any(str(_field(record, f)).upper() not in wanted
                   for f, wanted in filters.items()):
                continue
            items.append(rid)
        items.sort(key=self._order_key(object, order))
        if order and order.strip().upper().endswith("DESC"):
            items.reverse()
        pagination = None
        if page is not None:
            size = min(max(1, page_size or PAGE_SIZE_DEFAULT), PAGE_SIZE_MAX)
            count = len(items)
            pagination = {"page": page, "pageSize": size,
                          "pageCount": (count + size - 1) // size, "itemCount": count}
            items = items[(page - 1) * size: page * size]
        out = [self.public(object, rid) for rid in items]
        if object == "Invoices" and page is None:
            for record in out:  # an unpaged multi-invoice answer omits line items [obs]
                record.pop("LineItems", None)
        return out, pagination

    def _order_key(self, object: str, order: str | None) -> Callable[[str], Any]:
        meta = self.meta[object]
        name = (order or "").split()[0] if order and order.split() else ""
        if name in ("", "UpdatedDateUTC"):
            if not name:
                return lambda rid: meta[rid][1]  # [emu] no order: creation order
            return lambda rid: (meta[rid][0], meta[rid][1])
        records = self.records[object]
        return lambda rid: (str(records[rid].get(name, "")).lower(), meta[rid][1])

    def public(self, object: str, rid: str) -> dict[str, Any]:
        """A stored record as the API shows it."""
        record = copy.deepcopy(self.records[object][rid])
        record["UpdatedDateUTC"] = ms_date(self.meta[object][rid][0])
        if object == "Payments":
            invoice = self.records["Invoices"].get(record["Invoice"]["InvoiceID"])
            if invoice is not None:
                record["Invoice"] = {"InvoiceID": invoice["InvoiceID"],
                                     "InvoiceNumber": invoice["InvoiceNumber"],
                                     "Type": invoice["Type"],
                                     "CurrencyCode": invoice["CurrencyCode"],
                                     "Contact": dict(invoice["Contact"])}
        return record

    def get(self, object: str, rid: str) -> dict[str, Any]:
        """One record (404 when unknown)."""
        if rid not in self.records[object]:
            raise NotFound(rid)
        return self.public(object, rid)

    # -- writes ---------------------------------------------------------------------------

    def write(self, object: str, method: str, elements: list[Any],
              summarize: bool) -> tuple[int, dict[str, Any]]:
        """PUT/POST a batch; (status, body) as Xero answers it."""
        snapshot = self._snapshot() if summarize else None
        answers: list[dict[str, Any]] = []
        failed = False
        for element in elements:
            try:
                if not isinstance(element, dict):
                    raise Refused("each element must be a JSON object")
                rid = self._apply(object, method, element)
                answer = self.public(object, rid)
                answer[FLAG_FIELD[object]] = False
                if not summarize:
                    answer["StatusAttributeString"] = "OK"
                answers.append(answer)
            except Refused as exc:
                failed = True
                echo = dict(element) if isinstance(element, dict) else {}
                echo["ValidationErrors"] = [{"Message": m} for m in exc.messages]
                echo[FLAG_FIELD[object]] = True
                echo["StatusAttributeString"] = "ERROR"
                answers.append(echo)
        if failed and snapshot is not None:
            self._restore(snapshot)
            return 400, {"ErrorNumber": 10, "Type": "ValidationException",
                         "Message": "A validation exception occurred", "Elements": answers}
        return 200, {object: answers}

    def delete_payment(self, rid: str, body: Any) -> dict[str, Any]:
        """POST /Payments/{id} {"Status": "DELETED"}: the only change Xero allows a payment."""
        payment = self.records["Payments"].get(rid)
        if payment is None:
            raise NotFound(rid)
        element = body.get("Payments", [body])[0] if isinstance(body, dict) else None
        if not isinstance(element, dict) or element.get("Status") != "DELETED":
            raise Refused("A payment can only be deleted: send {\"Status\": \"DELETED\"}")
        if payment["Status"] == "DELETED":
            raise Refused("This payment has already been deleted")
        invoice = self.records["Invoices"][payment["Invoice"]["InvoiceID"]]
        now = self.clock()
        payment["Status"] = "DELETED"
        self._stamp("Payments", rid, now)
        invoice["Payments"] = [p for p in invoice["Payments"] if p["PaymentID"] != rid]
        self._recompute(invoice)
        if invoice["Status"] == "PAID":
            invoice["Status"] = "AUTHORISED"
            invoice.pop("FullyPaidOnDate", None)
        self._stamp("Invoices", invoice["InvoiceID"], now)
        answer = self.public("Payments", rid)
        answer["HasValidationErrors"] = False
        return {"Payments": [answer]}

    def _apply(self, object: str, method: str, element: dict[str, Any]) -> str:
        now = self.clock()
        if object == "Contacts":
            return self._upsert_contact(method, element, now)
        if object == "Invoices":
            return self._upsert_invoice(method, element, now)
        if element.get("PaymentID"):
            raise Refused("Payments cannot be updated; delete one with POST /Payments/{id} "
                          "{\"Status\": \"DELETED\"}")
        return self._create_payment(element, now)

    # -- contacts -------------------------------------------------------------------------

    def _upsert_contact(self, method: str, el: dict[str, Any], now: int) -> str:
        contacts = self.records["Contacts"]
        rid = el.get("ContactID")
        if rid and method == "PUT":
            raise Refused("PUT creates contacts only; use POST to update ContactID " + str(rid))
        if rid and rid not in contacts:
            raise Refused(f"Contact with ContactID {rid} was not found")
        current = contacts.get(rid) if rid else None
        merged = copy.deepcopy(current) if current else _empty_contact()
        for key in CONTACT_TEXT:
            if key in el:
                if el[key] is not None and not isinstance(el[key], str):
                    raise Refused(f"{key} must be text")
                merged[key] = el[key] or ""
        if "DefaultCurrency" in el:
            code = str(el["DefaultCurrency"] or "")
            if code and not re.fullmatch(r"[A-Z]{3}", code):
                raise Refused(f"DefaultCurrency '{code}' is not a currency code")
            merged["DefaultCurrency"] = code
        if "ContactStatus" in el:
            if el["ContactStatus"] not in ("ACTIVE", "ARCHIVED"):
                raise Refused("ContactStatus must be ACTIVE or ARCHIVED")
            merged["ContactStatus"] = el["ContactStatus"]
        merged["Phones"] = _merge_typed(merged["Phones"], el.get("Phones"), "PhoneType",
                                        PHONE_TYPES)
        merged["Addresses"] = _merge_typed(merged["Addresses"], el.get("Addresses"),
                                           "AddressType", ADDRESS_TYPES)
        problems = []
        name = merged["Name"].strip()
        if not name:
            problems.append("The contact name is required")
        elif merged["ContactStatus"] == "ACTIVE" and any(
                c["Name"].strip().lower() == name.lower() and c["ContactStatus"] == "ACTIVE"
                and c["ContactID"] != rid for c in contacts.values()):
            problems.append(f"The contact name {name} is already assigned to another contact. "
                            "The contact name must be unique across all active contacts.")
        if merged["EmailAddress"] and not EMAIL.fullmatch(merged["EmailAddress"]):
            problems.append("Email address must be valid.")
        if problems:
            raise Refused(*problems)
        if current is None:
            merged["ContactID"] = str(uuid.uuid4())
            return self._insert("Contacts", merged, now)
        contacts[str(rid)] = merged
        self._stamp("Contacts", str(rid), now, "UPDATE")
        return str(rid)

    # -- invoices -------------------------------------------------------------------------

    def _find_invoice(self, method: str, el: dict[str, Any]) -> dict[str, Any] | None:
        invoices = self.records["Invoices"]
        rid = el.get("InvoiceID")
        if rid and self.loading and rid not in invoices:
            return None
        if rid:
            if method == "PUT":
                raise Refused("PUT creates invoices only; use POST to update InvoiceID " +
                              str(rid))
            if rid not in invoices:
                raise Refused(f"Invoice with InvoiceID {rid} was not found")
            return invoices[rid]
        number = el.get("InvoiceNumber")
        if not number:
            return None
        kind = el.get("Type") or "ACCREC"
        for invoice in invoices.values():
            if invoice["InvoiceNumber"] == number and invoice["Type"] == kind \
                    and invoice["Status"] != "DELETED":
                if method == "PUT":
                    raise Refused("Invoice # must be unique.")
                return invoice
        return None

    def _upsert_invoice(self, method: str, el: dict[str, Any], now: int) -> str:
        current = self._find_invoice(method, el)
        edits = set(el) - {"InvoiceID", "InvoiceNumber", "Type", "Status"}
        if current is not None and edits and (current["Status"] not in EDITABLE_STATUSES
                                              or current["Payments"]):
            raise Refused("This document cannot be edited as it has a payment or credit "
                              "note allocated to it, or its status does not allow changes.")
        merged = copy.deepcopy(current) if current else {
            "InvoiceID": el.get("InvoiceID") or str(uuid.uuid4()), "Type": None,
            "InvoiceNumber": "", "Reference": "", "Contact": None, "Date": None,
            "DueDate": None, "Status": "DRAFT", "LineAmountTypes": "Exclusive",
            "LineItems": [], "CurrencyCode": BASE_CURRENCY, "Payments": [],
            "AmountPaid": Decimal(0)}
        problems = []
        if "Type" in el and current is None:
            merged["Type"] = el["Type"]
        if merged["Type"] not in INVOICE_TYPES:
            problems.append("Invoice Type must be ACCREC or ACCPAY")
        for key in ("InvoiceNumber", "Reference"):
            if key in el:
                merged[key] = str(el[key] or "")
        if "CurrencyCode" in el:
            merged["CurrencyCode"] = str(el["CurrencyCode"] or BASE_CURRENCY)
        if "Contact" in el:
            contact = self._contact_ref(el["Contact"])
            if contact is None:
                problems.append("A valid Contact (ContactID or the Name of an existing "
                                "contact) must be specified")
            else:
                merged["Contact"] = {"ContactID": contact["ContactID"],
                                     "Name": contact["Name"]}
        elif merged["Contact"] is None:
            problems.append("A Contact must be specified")
        for key in ("Date", "DueDate"):
            if key in el:
                ms = parse_date_ms(el[key])
                merged[key] = ms_date(_day(ms)) if ms is not None else None
                merged[f"{key}String"] = _date_string(_day(ms)) if ms is not None else None
        if merged["Date"] is None:
            merged["Date"] = ms_date(_day(now))
            merged["DateString"] = _date_string(_day(now))
        if "LineAmountTypes" in el:
            if el["LineAmountTypes"] not in ("Exclusive", "Inclusive", "NoTax"):
                problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
            merged["LineAmountTypes"] = el["LineAmountTypes"]
        if "LineItems" in el:
            try:
                merged["LineItems"] = self._lines(el["LineItems"], merged)
            except Refused as exc:
                problems.extend(exc.messages)
        if problems:
            raise Refused(*problems)
        if not merged["InvoiceNumber"] and merged["Type"] == "ACCREC":
            merged["InvoiceNumber"] = f"INV-{self.next_number:04d}"
            self.next_number += 1
        self._recompute(merged)
        if "Status" in el and el["Status"] != merged["Status"]:
            self._set_status(merged, str(el["Status"]), creating=current is None)
        rid = merged["InvoiceID"]
        if current is None:
            self._insert("Invoices", merged, now)
        else:
            self.records["Invoices"][rid] = merged
            self._stamp("Invoices", rid, now, "UPDATE")
        contact = self.records["Contacts"].get(merged["Contact"]["ContactID"])
        if contact is not None:  # Xero derives these flags from the invoices
            contact["IsCustomer" if merged["Type"] == "ACCREC" else "IsSupplier"] = True
        return str(rid)

    def _contact_ref(self, ref: Any) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        contacts = self.records["Contacts"]
        if ref.get("ContactID"):
            return contacts.get(str(ref["ContactID"]))
        name = str(ref.get("Name") or "").strip().lower()
        return next((c for c in contacts.values() if name and c["Name"].lower() == name
                     and c["ContactStatus"] == "ACTIVE"), None)

    def _lines(self, raw: Any, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise Refused("LineItems must be a list")
        old = {line["LineItemID"]: line for line in invoice["LineItems"]}
        lines: list[dict[str, Any]] = []
        for n, item in enumerate(raw, 1):
            if not isinstance(item, dict):
                raise Refused(f"Line item {n} must be an object")
            if not (item.get("Description") or item.get("ItemCode")):
                raise Refused(f"Line item {n}: Description is required")
            quantity = _decimal(item.get("Quantity", 1), "Quantity")
            unit = _decimal(item.get("UnitAmount", 0), "UnitAmount")
            discount = _decimal(item.get("DiscountRate") or 0, "DiscountRate")
            default_tax = "OUTPUT" if invoice["Type"] == "ACCREC" else "INPUT"
            tax_type = str(item.get("TaxType") or default_tax)
            if tax_type not in TAX_RATES:
                raise Refused(f"Line item {n}: TaxType '{tax_type}' is not valid")
            line_id = item.get("LineItemID")
            if line_id and line_id not in old:
                raise Refused(f"Line item {n}: LineItemID {line_id} is not on this invoice")
            amount = money(quantity * unit * (1 - discount / 100))
            rate = TAX_RATES[tax_type] if invoice["LineAmountTypes"] != "NoTax" else Decimal(0)
            tax = money(amount * rate / (1 + rate)) if invoice["LineAmountTypes"] == \
                "Inclusive" else money(amount * rate)
            lines.append({"LineItemID": line_id or str(uuid.uuid4()),
                          "Description": str(item.get("Description") or ""),
                          "Quantity": quantity, "UnitAmount": unit,
                          "ItemCode": str(item.get("ItemCode") or ""),
                          "AccountCode": str(item.get("AccountCode") or ""),
                          "TaxType": tax_type, "TaxAmount": tax, "LineAmount": amount,
                          "DiscountRate": discount if item.get("DiscountRate") else None,
                          "Tracking": []})
        return lines

    @staticmethod
    def _recompute(invoice: dict[str, Any]) -> None:
        sub = sum((line["LineAmount"] for line in invoice["LineItems"]), Decimal(0))
        tax = sum((line["TaxAmount"] for line in invoice["LineItems"]), Decimal(0))
        inclusive = invoice["LineAmountTypes"] == "Inclusive"
        invoice["SubTotal"] = money(sub - tax if inclusive else sub)
        invoice["TotalTax"] = money(tax)
        invoice["Total"] = money(sub if inclusive else sub + tax)
        paid = sum((Decimal(str(p["Amount"])) for p in invoice["Payments"]), Decimal(0))
        invoice["AmountPaid"] = money(paid)
        invoice["AmountDue"] = money(invoice["Total"] - paid)

    @staticmethod
    def _set_status(invoice: dict[str, Any], status: str, creating: bool = False) -> None:
        old = invoice["Status"]
        allowed = {"DRAFT": ("SUBMITTED", "AUTHORISED", "DELETED"),
                   "SUBMITTED": ("DRAFT", "AUTHORISED", "DELETED"),
                   "AUTHORISED": ("VOIDED",)}.get(old, ())
        if creating and status in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            invoice["Status"] = status
            return
        if status not in allowed:
            raise Refused(f"Invoice not of valid status for modification: cannot go from "
                          f"{old} to {status}")
        if status == "VOIDED" and invoice["Payments"]:
            raise Refused("Invoice cannot be voided as it has payments allocated to it")
        invoice["Status"] = status

    # -- payments -------------------------------------------------------------------------

    def _create_payment(self, el: dict[str, Any], now: int) -> str:
        ref = el.get("Invoice")
        invoice = None
        if isinstance(ref, dict):
            invoices = self.records["Invoices"]
            if ref.get("InvoiceID"):
                invoice = invoices.get(str(ref["InvoiceID"]))
            elif ref.get("InvoiceNumber"):
                invoice = next((i for i in invoices.values()
                                if i["InvoiceNumber"] == ref["InvoiceNumber"]
                                and i["Status"] != "DELETED"), None)
        problems = []
        if invoice is None:
            raise Refused("An Invoice (InvoiceID or InvoiceNumber of an existing invoice) "
                          "must be specified")
        account = el.get("Account") if isinstance(el.get("Account"), dict) else {}
        bank = next((a for a in BANK_ACCOUNTS if account and (
            a["AccountID"] == account.get("AccountID") or a["Code"] == account.get("Code"))),
            None)
        if bank is None:
            problems.append("Account must be a bank account (AccountID or Code, e.g. 090)")
        try:
            amount = money(_decimal(el.get("Amount"), "Amount"))
        except Refused as exc:
            raise Refused(*problems, *exc.messages) from None
        if invoice["Status"] != "AUTHORISED":
            problems.append("Payment can only be made against Authorised documents")
        elif amount <= 0:
            problems.append("Payment amount must be greater than zero")
        elif amount > invoice["AmountDue"]:
            problems.append("Payment amount exceeds the amount outstanding on this document")
        date_ms = parse_date_ms(el.get("Date")) if el.get("Date") else _day(now)
        if problems:
            raise Refused(*problems)
        rid = str(el.get("PaymentID") or uuid.uuid4())
        payment = {"PaymentID": rid, "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                   "Account": {"AccountID": bank["AccountID"], "Code": bank["Code"]}
                   if bank else {},
                   "Date": ms_date(_day(date_ms or now)), "Amount": amount,
                   "Reference": str(el.get("Reference") or ""), "Status": "AUTHORISED",
                   "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC"
                   else "ACCPAYPAYMENT", "IsReconciled": False}
        self._insert("Payments", payment, now)
        invoice["Payments"].append({"PaymentID": rid, "Date": payment["Date"],
                                    "Amount": amount})
        self._recompute(invoice)
        if invoice["AmountDue"] == 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = payment["Date"]
        self._stamp("Invoices", invoice["InvoiceID"], now, "UPDATE")
        return rid

    # -- bookkeeping ----------------------------------------------------------------------

    def _insert(self, object: str, record: dict[str, Any], at: int) -> str:
        rid = str(record[ID_FIELD[object]])
        self.records[object][rid] = record
        self.seq += 1
        self.meta[object][rid] = [at, self.seq]
        self._announce(object, rid, "CREATE", at)
        return rid

    def _stamp(self, object: str, rid: str, at: int, event: str = "UPDATE") -> None:
        self.meta[object][rid][0] = max(at, self.meta[object][rid][0])
        self._announce(object, rid, event, at)

    def touch(self, object: str, rid: str, at: int, **fields: Any) -> dict[str, Any]:
        """Change fields of a record as a Xero user would (bumps UpdatedDateUTC)."""
        record = self.records[object][rid]
        record.update(fields)
        self.meta[object][rid][0] = at
        self._announce(object, rid, "UPDATE", at)
        return self.public(object, rid)

    def _announce(self, object: str, rid: str, event: str, at: int) -> None:
        category = CATEGORY.get(object)
        if self.recording and category:
            when = datetime.fromtimestamp(at / 1000, UTC)
            self.changes.append({"resourceId": rid, "eventCategory": category,
                                 "eventType": event,
                                 "eventDateUtc": when.strftime("%Y-%m-%dT%H:%M:%S.")
                                 + f"{at % 1000:03d}"})

    def _snapshot(self) -> tuple[Any, ...]:
        return (copy.deepcopy(self.records), copy.deepcopy(self.meta), self.seq,
                self.next_number, len(self.changes))

    def _restore(self, snapshot: tuple[Any, ...]) -> None:
        self.records, self.meta, self.seq, self.next_number, changes = snapshot
        del self.changes[changes:]


def _empty_contact() -> dict[str, Any]:
    contact: dict[str, Any] = {key: "" for key in CONTACT_TEXT}
    contact.update({"ContactStatus": "ACTIVE", "IsCustomer": False, "IsSupplier": False,
                    "DefaultCurrency": "", "Website": "",
                    "Addresses": [{"AddressType": t, "AddressLine1": "", "AddressLine2": "",
                                   "City": "", "Region": "", "PostalCode": "", "Country": "",
                                   "AttentionTo": ""} for t in ("POBOX", "STREET")],
                    "Phones": [{"PhoneType": t, "PhoneNumber": "", "PhoneAreaCode": "",
                                "PhoneCountryCode": ""} for t in PHONE_TYPES]})
    return contact


def _merge_typed(current: list[dict[str, Any]], given: Any, type_key: str,
                 types: tuple[str, ...]) -> list[dict[str, Any]]:
    """Phones/Addresses: an entry replaces the fields of the entry of the same type."""
    if given is None:
        return current
    if not isinstance(given, list):
        raise Refused(f"{type_key[:-4]}es must be a list")
    out = [dict(entry) for entry in current]
    for entry in given:
        if not isinstance(entry, dict) or entry.get(type_key) not in types:
            raise Refused(f"{type_key} must be one of {', '.join(types)}")
        same = next((e for e in out if e.get(type_key) == entry[type_key]), None)
        clean = {k: ("" if v is None else str(v)) for k, v in entry.items()}
        if same is None:
            out.append(clean)
        else:
            same.update(clean)
    return out


def _field(record: Mapping[str, Any], name: str) -> Any:
    if name == "ContactID" and "Contact" in record:
        return record["Contact"]["ContactID"]
    return record.get(name)
