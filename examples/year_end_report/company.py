"""A simulated company: its finance, ERP and CRM systems, department by department.

Every (year, department, system) gets its own ``random.Random`` seeded from a CRC-32 of
``"{year}:{department}:{system}"``. CRC-32 is stable across processes and Python versions
(``hash()`` of a string is salted per process), so any worker on any machine regenerates
exactly the same records, and a retried extract sees the same data as the first attempt.

Each department has its own scale (revenue, headcount, products, deal sizes), so the reports
differ. Unknown department slugs get a scale derived from the slug, so any partition works.

Run as a program to export the source systems as CSV files a graph can read instead:

    python -m year_end_report.company --out sources --year 2025 --departments sales,marketing

writes ``sources/<system>/<department>.csv`` for system in finance, erp, crm.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, TypeVar

from year_end_report.figures import format_cents
from year_end_report.files import read_csv, write_csv

SYSTEMS: tuple[str, ...] = ("finance", "erp", "crm")
DEFAULT_YEAR = 2025
DEFAULT_DEPARTMENTS: tuple[str, ...] = (
    "sales",
    "marketing",
    "engineering",
    "operations",
    "customer_service",
    "branch_shanghai",
    "branch_shenzhen",
    "branch_chengdu",
)
ACCOUNTS: tuple[str, ...] = ("revenue", "cogs", "opex", "payroll")
STAGES: tuple[str, ...] = ("won", "lost", "open")
ERP_KINDS: tuple[str, ...] = ("order", "stock")

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Month-by-month demand in per mille of an average month: slow summer, strong Q4.
_SEASON = (920, 900, 1010, 980, 1000, 1030, 940, 910, 1040, 1070, 1110, 1260)
_OPEX_SPLIT = (
    ("Rent and facilities", 30),
    ("Software and cloud", 20),
    ("Marketing campaigns", 25),
    ("Travel", 10),
    ("Professional services", 15),
)
# Product catalogue: name -> standard unit cost in cents.
PRODUCTS: Mapping[str, int] = MappingProxyType(
    {
        "SEN-100 temperature sensor": 1840,
        "SEN-200 pressure sensor": 4275,
        "GW-10 IoT gateway": 12900,
        "CAB-5 cable kit": 620,
        "DSP-7 wall display": 8950,
        "SVC-1 support pack": 2500,
    }
)
_CUSTOMER_PREFIXES = (
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Hooli",
    "Acme",
    "Tyrell",
    "Cyberdyne",
    "Wayne",
    "Stark",
    "Umbrella",
    "Soylent",
)
_CUSTOMER_SUFFIXES = ("Trading", "Logistics", "Manufacturing", "Retail", "Energy", "Foods")
_ODD_CUSTOMERS = ("O'Brien, Kelly & Co.", "Müller & Söhne GmbH", '"Blue Sky" Ventures')


@dataclass(frozen=True)
class Profile:
    """A department's scale: amounts are cents per month, counts per month."""

    revenue: int
    cogs_permille: int
    opex: int
    headcount: int
    salary: int
    products: tuple[str, ...]
    units: int
    deals: int
    deal_size: int


_SEN1, _SEN2, _GW, _CAB, _DSP, _SVC = PRODUCTS
PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        "sales": Profile(210_000_000, 520, 16_000_000, 38, 980_000, (_SEN1, _SEN2, _GW, _CAB), 900, 34, 4_200_000),
        "marketing": Profile(8_000_000, 300, 20_000_000, 12, 950_000, (_DSP,), 60, 9, 1_800_000),
        "engineering": Profile(60_000_000, 150, 10_000_000, 40, 1_350_000, (_GW,), 140, 6, 6_500_000),
        "operations": Profile(90_000_000, 640, 8_000_000, 30, 780_000, (_SEN1, _CAB, _DSP), 700, 12, 2_100_000),
        "customer_service": Profile(40_000_000, 150, 3_000_000, 40, 650_000, (_SVC,), 400, 20, 750_000),
        "branch_shanghai": Profile(
            150_000_000, 520, 11_000_000, 27, 1_120_000, (_SEN1, _SEN2, _GW, _DSP), 650, 26, 3_800_000
        ),
        "branch_shenzhen": Profile(
            120_000_000, 560, 9_000_000, 24, 1_040_000, (_SEN1, _SEN2, _CAB), 720, 22, 3_100_000
        ),
        "branch_chengdu": Profile(70_000_000, 580, 6_000_000, 15, 860_000, (_SEN1, _CAB), 380, 14, 1_900_000),
    }
)


@dataclass(frozen=True)
class LedgerLine:
    """A general-ledger line from the finance system (amount in cents; credits negative)."""

    FIELDS: ClassVar[tuple[str, ...]] = ("entry_id", "month", "account", "description", "amount")
    entry_id: str
    month: int
    account: str
    description: str
    amount: int

    def as_row(self) -> dict[str, str]:
        """The line as the finance system exports it."""
        return {
            "entry_id": self.entry_id,
            "month": str(self.month),
            "account": self.account,
            "description": self.description,
            "amount": format_cents(self.amount),
        }


@dataclass(frozen=True)
class ErpLine:
    """An ERP line: units shipped on an order, or units in stock at month end."""

    FIELDS: ClassVar[tuple[str, ...]] = ("line_id", "month", "kind", "product", "units", "unit_cost")
    line_id: str
    month: int
    kind: str
    product: str
    units: int
    unit_cost: int

    def as_row(self) -> dict[str, str]:
        """The line as the ERP system exports it."""
        return {
            "line_id": self.line_id,
            "month": str(self.month),
            "kind": self.kind,
            "product": self.product,
            "units": str(self.units),
            "unit_cost": format_cents(self.unit_cost),
        }


@dataclass(frozen=True)
class Deal:
    """A CRM deal: customer, stage (won, lost or still open) and value in cents."""

    FIELDS: ClassVar[tuple[str, ...]] = ("deal_id", "month", "customer", "stage", "value")
    deal_id: str
    month: int
    customer: str
    stage: str
    value: int

    def as_row(self) -> dict[str, str]:
        """The deal as the CRM exports it."""
        return {
            "deal_id": self.deal_id,
            "month": str(self.month),
            "customer": self.customer,
            "stage": self.stage,
            "value": format_cents(self.value),
        }


FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"finance": LedgerLine.FIELDS, "erp": ErpLine.FIELDS, "crm": Deal.FIELDS}
)

Record = LedgerLine | ErpLine | Deal
_T = TypeVar("_T")
_Entry = tuple[int, str, str, int]  # a ledger line before it gets its id


def check_slug(department: str) -> str:
    """Insist on a file-name-safe department slug: it becomes part of every output path."""
    if not _SLUG.fullmatch(department):
        raise ValueError(
            f"bad department slug {department!r}: use lowercase letters, digits, '_' and '-' (at most 64 characters)"
        )
    return department


def check_system(system: str) -> str:
    """Insist on one of the three source systems."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown source system {system!r}; expected one of {', '.join(SYSTEMS)}")
    return system


def seed_for(year: int, department: str, system: str) -> int:
    """The stable seed of one (year, department, system) data set."""
    return zlib.crc32(f"{year}:{department}:{system}".encode())


def display_name(department: str) -> str:
    """Human name of a slug: ``customer_service`` -> ``Customer Service``,
    ``branch_chengdu`` -> ``Chengdu branch``."""
    if department.startswith("branch_"):
        return department.removeprefix("branch_").replace("_", " ").title() + " branch"
    return department.replace("_", " ").replace("-", " ").title()


def profile_for(department: str) -> Profile:
    """The department's scale; unknown slugs get a generic profile scaled by their CRC."""
    known = PROFILES.get(department)
    if known is not None:
        return known
    scale = 50 + zlib.crc32(department.encode()) % 101  # 50..150 per cent
    return Profile(
        70_000_000 * scale // 100,
        550,
        6_000_000 * scale // 100,
        max(3, 15 * scale // 100),
        900_000,
        (_SEN1, _CAB),
        380 * scale // 100,
        max(2, 12 * scale // 100),
        2_000_000,
    )


def generate(system: str, department: str, year: int) -> list[Record]:
    """Every record ``system`` holds for ``department`` in ``year``, always the same ones."""
    check_system(system)
    check_slug(department)
    rng = random.Random(seed_for(year, department, system))
    makers: dict[str, Callable[[random.Random, Profile, int], list[Record]]] = {
        "finance": _ledger,
        "erp": _erp,
        "crm": _crm,
    }
    return makers[system](rng, profile_for(department), year)


def simulated_rows(system: str, department: str, year: int) -> list[dict[str, str]]:
    """The records as the source system exports them (string cells, like its CSV file)."""
    return [record.as_row() for record in generate(system, department, year)]


def source_path(source_dir: Path, system: str, department: str) -> Path:
    """Where a department's export from one system lives: ``<dir>/<system>/<dept>.csv``."""
    return source_dir / check_system(system) / f"{check_slug(department)}.csv"


def load_rows(system: str, department: str, year: int, source_dir: str) -> list[dict[str, str]]:
    """Source rows for one department: simulated when ``source_dir`` is empty, else its file."""
    if not source_dir:
        return simulated_rows(system, department, year)
    path = source_path(Path(source_dir), system, department)
    if not path.is_file():
        raise FileNotFoundError(
            f"missing {system} source file for department {department!r}: {path} "
            f"(expected {{source_dir}}/{system}/{department}.csv; export one with "
            f"'python -m year_end_report.company --out {source_dir}')"
        )
    return read_csv(path, FIELDS[system])


def write_sources(out_dir: Path, year: int, departments: Sequence[str]) -> list[Path]:
    """Export every system's records for the departments as CSV files; return the paths."""
    written = []
    for department in departments:
        for system in SYSTEMS:
            rows = simulated_rows(system, department, year)
            path = source_path(out_dir, system, department)
            written.append(write_csv(path, FIELDS[system], rows))
    return written


# --- generators -------------------------------------------------------------------------


def _vary(rng: random.Random, base: int, spread_permille: int) -> int:
    """``base`` moved randomly by up to ``spread_permille`` per mille either way."""
    return base * rng.randint(1000 - spread_permille, 1000 + spread_permille) // 1000


def _ledger(rng: random.Random, profile: Profile, year: int) -> list[Record]:
    """A year of general-ledger lines, with the occasional line exported twice."""
    raw: list[_Entry] = []
    for month in range(1, 13):
        raw += _revenue_lines(rng, profile, month)
        raw += _cost_lines(rng, profile, month)
    lines: list[Record] = [LedgerLine(f"GL-{year}-{n:05d}", *item) for n, item in enumerate(raw, 1)]
    return _with_duplicates(rng, lines)


def _revenue_lines(rng: random.Random, profile: Profile, month: int) -> list[_Entry]:
    """A month's invoiced revenue in a few batches, sometimes less a credit note."""
    target = profile.revenue * _SEASON[month - 1] // 1000
    batches = rng.randint(3, 6)
    lines = [
        (month, "revenue", f"Invoice batch {n}", _vary(rng, target // batches, 350)) for n in range(1, batches + 1)
    ]
    if rng.random() < 0.15:
        lines.append((month, "revenue", "Credit note", -_vary(rng, target // 50, 500)))
    return lines


def _cost_lines(rng: random.Random, profile: Profile, month: int) -> list[_Entry]:
    """A month's cost of goods, operating expense and payroll lines."""
    revenue = profile.revenue * _SEASON[month - 1] // 1000
    lines = [(month, "cogs", "Cost of goods sold", _vary(rng, revenue * profile.cogs_permille // 1000, 60))]
    lines += [(month, "opex", name, _vary(rng, profile.opex * share // 100, 250)) for name, share in _OPEX_SPLIT]
    monthly_pay = profile.headcount * profile.salary
    lines.append((month, "payroll", "Salaries and benefits", _vary(rng, monthly_pay, 30)))
    if month == 12:
        lines.append((month, "payroll", "Year-end bonus", monthly_pay * rng.randint(30, 80) // 100))
    return lines


def _erp(rng: random.Random, profile: Profile, year: int) -> list[Record]:
    """A year of ERP lines: each product's shipped units and its month-end stock count."""
    lines: list[Record] = []
    for month in range(1, 13):
        for product in profile.products:
            cost = _vary(rng, PRODUCTS[product], 30)
            shipped = _vary(rng, profile.units * _SEASON[month - 1] // 1000, 250)
            stock = _vary(rng, profile.units * 2, 400)
            lines.append(ErpLine(f"ERP-{year}-{len(lines) + 1:05d}", month, "order", product, shipped, cost))
            lines.append(ErpLine(f"ERP-{year}-{len(lines) + 1:05d}", month, "stock", product, stock, cost))
    return lines


def _crm(rng: random.Random, profile: Profile, year: int) -> list[Record]:
    """A year of CRM deals; later months leave more deals still open at year end."""
    customers = _customers(rng)
    deals: list[Record] = []
    for month in range(1, 13):
        for _ in range(max(1, _vary(rng, profile.deals, 300))):
            value = max(100_00, _vary(rng, profile.deal_size, 600) // 100_00 * 100_00)
            deals.append(
                Deal(f"CRM-{year}-{len(deals) + 1:05d}", month, rng.choice(customers), _stage(rng, month), value)
            )
    return _with_duplicates(rng, deals)


def _customers(rng: random.Random) -> list[str]:
    """The department's customer base, drawn from a shared pool of company names."""
    pool = [f"{a} {b}" for a in _CUSTOMER_PREFIXES for b in _CUSTOMER_SUFFIXES]
    pool += _ODD_CUSTOMERS
    return rng.sample(pool, rng.randint(12, 30))


def _stage(rng: random.Random, month: int) -> str:
    """Deal outcome: the later in the year a deal was opened, the likelier it is still open."""
    roll = rng.randint(1, 100)
    if roll <= 8 + 3 * month:
        return "open"
    return "won" if rng.random() < 0.55 else "lost"


def _with_duplicates(rng: random.Random, records: list[_T]) -> list[_T]:
    """Repeat about one record in sixty, as real exports do; processing must drop them."""
    out: list[_T] = []
    for record in records:
        out.append(record)
        if rng.random() < 1 / 60:
            out.append(record)
    return out


# --- CLI --------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options of the source-file exporter."""
    parser = argparse.ArgumentParser(
        prog="python -m year_end_report.company",
        description="Export the simulated finance, ERP and CRM data as CSV source files.",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument("--year", type=int, default=DEFAULT_YEAR, help="fiscal year")
    parser.add_argument("--departments", default=",".join(DEFAULT_DEPARTMENTS), help="comma-separated department slugs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``<out>/<system>/<department>.csv`` for every system and department."""
    args = _parse_args(argv)
    departments = [name.strip() for name in args.departments.split(",") if name.strip()]
    try:
        paths = write_sources(args.out, args.year, departments)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
