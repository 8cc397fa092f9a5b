"""The dashboard's data layer: states, silo map, coverage, next steps and maturity.

The judgements are pure functions of Settings and Facts, so most tests build the facts by
hand at a fixed `now`; `gather` is tested against real stores seeded by real syncs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import loads
from hub.config.model import Settings
from hub.health import stale_since
from hub.insights import judge, overview
from hub.insights.facts import DeadGroup, Facts, FlowFacts, RunFact, gather, iso
from hub.insights.health import flow_view, silo_map, since_text
from hub.insights.listings import dead_letter_rows, parse_time, run_problem, run_rows
from hub.insights.maturity import PHASES, Measures
from hub.insights.maturity import judge as judge_maturity
from hub.insights.nextsteps import next_steps
from hub.web.silosvg import BOX_H, COL_W, layout
from tests.integration.helpers import Hub, contact, write_csv

NOW = datetime(2026, 11, 26, 10, 7, tzinfo=UTC)


def ago(**kw: float) -> str:
    """A store timestamp that long before NOW."""
    return iso(NOW - timedelta(**kw))


def settings(tmp_path: Path, systems: str, flows: str) -> Settings:
    text = f"version: 1\nstore: sqlite:///{tmp_path / 'x.db'}\nsystems:\n{systems}\nflows:\n{flows}\n"
    return loads(text, file=str(tmp_path / "hub.yaml"))


def sheet(name: str, category: str = "files", owner: str | None = "Ops") -> str:
    own = f"\n    owner: {owner}" if owner else ""
    return (f"  {name}:\n    category: {category}{own}\n    connection: "
            f"{{connector: spreadsheet, path: /tmp/{name}}}")


def silo(name: str, category: str, owner: str | None = None) -> str:
    return f"  {name}:\n    category: {category}" + (f"\n    owner: {owner}" if owner else "")


def flow(name: str, entity: str, src: str, dst: str, extra: str = "") -> str:
    return f"  {name}:\n    entity: {entity}\n    from: {src}\n    to: {dst}" + extra


def ran(*statuses: str, success: str | None = None, **week: int) -> FlowFacts:
    """Facts of a flow whose newest runs ended in `statuses` (newest first)."""
    runs = tuple(RunFact(100 - i, s, ago(minutes=10 + i), ago(minutes=9 + i),
                         "Jira refused the token" if s == "failed" else None)
                 for i, s in enumerate(statuses))
    return FlowFacts(runs, success, week)


@pytest.fixture
def landscape(tmp_path: Path) -> Settings:
    """crm and sheets connected; mailbox a silo without owner; erp connected but only
    used by a paused flow; projects a silo."""
    return settings(tmp_path, "\n".join([
        sheet("crm", "crm", "Anna"), sheet("sheets"), silo("mailbox", "email"),
        sheet("erp", "other", "Eve"), silo("projects", "project", "Pat")]), "\n".join([
            flow("contacts", "contact", "crm", "sheets", '\n    schedule: "*/15 * * * *"'),
            flow("companies", "company", "sheets", "crm"),
            flow("to-erp", "company", "crm", "erp", "\n    enabled: false")]))


# -- flow and system states ---------------------------------------------------------------


def test_a_flow_that_succeeded_recently_is_healthy(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("succeeded", success=ago(minutes=9))})
    view = flow_view(landscape.flows["contacts"], facts)
    assert (view.state, view.reasons) == ("healthy", ())


def test_a_failed_last_run_makes_the_flow_failing_and_says_why(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("failed", "succeeded", success=ago(minutes=20))})
    view = flow_view(landscape.flows["contacts"], facts)
    assert view.state == "failing" and view.failures == 1
    assert "run 100" in view.reasons[0] and "Jira refused the token" in view.reasons[0]


def test_new_open_dead_letters_make_a_flow_failing(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("partial", success=ago(minutes=30))},
                  dead=(DeadGroup("contacts", "crm", "contact", "validate", 5, 2),))
    view = flow_view(landscape.flows["contacts"], facts)
    assert (view.state, view.open_dead, view.new_dead) == ("failing", 5, 2)
    assert "2 records dead-lettered in the last 24 hours" in view.reasons[0]


def test_old_dead_letters_alone_do_not_make_a_flow_failing(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("succeeded", success=ago(minutes=9))},
                  dead=(DeadGroup("contacts", "crm", "contact", "validate", 5, 0),))
    assert flow_view(landscape.flows["contacts"], facts).state == "healthy"


@pytest.mark.parametrize(("minutes", "state"), [(36, "healthy"), (38, "stale")])
def test_a_scheduled_flow_is_stale_after_missing_three_slots(landscape: Settings, minutes: int,
                                                            state: str) -> None:
    # At 10:07 the third newest */15 slot is 09:30: a success at 09:31 is fine, 09:29 is not.
    assert stale_since(landscape.flows["contacts"], NOW) == datetime(2026, 11, 26, 9, 30,
                                                                     tzinfo=UTC)
    facts = Facts(NOW, {"contacts": ran("succeeded", success=ago(minutes=minutes))})
    assert flow_view(landscape.flows["contacts"], facts).state == state


def test_an_unscheduled_flow_is_stale_after_a_day_and_a_new_one_never_synced(
        landscape: Settings) -> None:
    f = landscape.flows["companies"]
    assert flow_view(f, Facts(NOW, {"companies": ran(success=ago(hours=23))})).state == "healthy"
    stale = flow_view(f, Facts(NOW, {"companies": ran(success=ago(hours=25))}))
    assert stale.state == "stale" and "24 hours" in stale.reasons[0]
    never = flow_view(f, Facts(NOW))
    assert never.state == "stale" and "never synced" in never.reasons[0]


def test_systems_take_the_worst_state_of_their_enabled_flows(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("failed", success=ago(minutes=20)),
                        "companies": ran("succeeded", success=ago(hours=1))})
    states = {s.name: s for s in silo_map(landscape, facts).systems}
    assert states["crm"].state == "failing" and states["sheets"].state == "failing"
    assert states["mailbox"].state == "disconnected"
    assert "no connection" in states["mailbox"].reasons[0]
    # erp has a connection, but its only flow is paused: still a silo.
    assert states["erp"].state == "disconnected"
    assert "no enabled flow" in states["erp"].reasons[0]
    facts = replace(facts, flows={**facts.flows, "contacts": ran("succeeded",
                                                                   success=ago(minutes=5))})
    assert {s.name: s.state for s in silo_map(landscape, facts).systems}["crm"] == "healthy"


def test_systems_say_owner_entities_last_sync_and_records_today(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("succeeded", success=ago(minutes=5)),
                        "companies": ran("succeeded", success=ago(minutes=50))},
                  today={"crm": 12})
    s = {v.name: v for v in silo_map(landscape, facts).systems}
    assert (s["crm"].entities_out, s["crm"].entities_in) == (("contact",), ("company",))
    assert s["crm"].last_sync == ago(minutes=5) and s["crm"].records_today == 12
    assert s["mailbox"].owner_missing and not s["crm"].owner_missing
    assert s["crm"].flows == ("contacts", "companies")  # the paused flow is not counted


def test_the_map_has_categories_edges_and_coverage(landscape: Settings) -> None:
    m = silo_map(landscape, Facts(NOW))
    assert m.categories == ("crm", "email", "project", "files", "other")
    assert {(e.flow, e.source, e.target, e.state) for e in m.edges} == {
        ("contacts", "crm", "sheets", "stale"), ("companies", "sheets", "crm", "stale"),
        ("to-erp", "crm", "erp", "disabled")}
    assert (m.coverage.connected, m.coverage.declared) == (2, 5)
    assert m.coverage.ratio == pytest.approx(0.4)
    assert m.coverage.entities_covered == ("company", "contact")
    assert m.by_state == {"healthy": 0, "failing": 0, "stale": 2, "disconnected": 3}


def test_since_text_reads_well() -> None:
    assert since_text(None, NOW) == "never"
    assert since_text(ago(seconds=20), NOW) == "just now"
    assert since_text(ago(minutes=1), NOW) == "1 minute ago"
    assert since_text(ago(hours=3, minutes=5), NOW) == "3 hours ago"
    assert since_text(ago(days=2), NOW) == "2 days ago"


# -- next steps ---------------------------------------------------------------------------


def test_next_steps_put_the_most_failing_flow_first(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("failed", "succeeded", "failed", "failed"),
                        "companies": ran("failed", "succeeded")})
    fixes = [s for s in next_steps(landscape, facts) if s.kind == "fix-flow"]
    assert [(s.subject, s.figures["failures"], s.rank) for s in fixes] == [
        ("contacts", 3, 1), ("companies", 1, 2)]
    assert "3 of its last 4 finished runs failed" in fixes[0].detail
    assert fixes[0].link == "/flows/contacts"


def test_a_single_old_failure_is_not_a_flow_that_keeps_failing(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("succeeded", "failed", success=ago(minutes=5))})
    assert not [s for s in next_steps(landscape, facts) if s.kind == "fix-flow"]


def test_data_quality_ranks_entities_by_their_dead_lettered_share(landscape: Settings) -> None:
    facts = Facts(NOW, records={"contact": 95, "company": 990}, dead=(
        DeadGroup("contacts", "crm", "contact", "validate", 4, 0),
        DeadGroup("contacts", "sheets", "contact", "write", 1, 0),
        DeadGroup("companies", "sheets", "company", "map", 5, 0),
        DeadGroup("companies", "sheets", "company", "read", 5, 0)))
    quality = [s for s in next_steps(landscape, facts) if s.kind == "data-quality"]
    assert [(s.subject, s.figures["share"], s.figures["invalid"]) for s in quality] == [
        ("contact", 0.05, 4), ("company", 0.01, 5)]
    assert "5.0% could not be synced" in quality[0].title


def test_systems_without_owner_are_named(landscape: Settings) -> None:
    owners = [s for s in next_steps(landscape, Facts(NOW)) if s.kind == "assign-owner"]
    assert [s.subject for s in owners] == ["mailbox"]


def test_silos_are_ranked_by_the_records_they_would_join(landscape: Settings) -> None:
    facts = Facts(NOW, records={"contact": 1200, "company": 300, "task": 5})
    silos = [s for s in next_steps(landscape, facts) if s.kind == "connect-silo"]
    # erp (spreadsheet: every entity) would join contacts and companies (1,500 records);
    # mailbox (email: contact, message) the 1,200 contacts; projects shares nothing flowing.
    assert [(s.subject, s.figures["records"], s.figures["flows"]) for s in silos] == [
        ("erp", 1500, 2), ("mailbox", 1200, 1), ("projects", 0, 0)]
    assert "give it a flow" in silos[0].title and "connection" in silos[1].title
    assert "join 1,200 records" in silos[1].detail
    assert "new kind of record" in silos[2].detail


def test_a_silo_step_does_not_call_a_failing_flow_syncing(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("failed", success=ago(minutes=20)),
                        "companies": ran("partial", success=ago(minutes=9))},
                  records={"contact": 1200, "company": 300})
    silos = {s.subject: s for s in next_steps(landscape, facts) if s.kind == "connect-silo"}
    assert "with 2 enabled flows (1 syncing, 1 failing) and join 1,500" in silos["erp"].detail
    assert "with 1 enabled flow (failing) and join 1,200" in silos["mailbox"].detail
    never = {s.subject: s for s in next_steps(landscape, Facts(NOW, records={"contact": 1}))
             if s.kind == "connect-silo"}
    assert "with 1 enabled flow (stale)" in never["mailbox"].detail
    assert not any("running" in s.detail for s in [*silos.values(), *never.values()])


def test_steps_come_most_urgent_kind_first(landscape: Settings) -> None:
    facts = Facts(NOW, {"contacts": ran("failed", "failed")}, records={"contact": 1},
                  dead=(DeadGroup("contacts", "crm", "contact", "validate", 1, 0),))
    kinds = [s.kind for s in next_steps(landscape, facts)]
    assert kinds == sorted(kinds, key=["fix-flow", "data-quality", "stale-flow",
                                       "assign-owner", "connect-silo"].index)
    assert kinds[0] == "fix-flow" and "connect-silo" in kinds


# -- maturity -----------------------------------------------------------------------------


def measures(**kw: Any) -> Measures:
    base = {"connected": 10, "declared": 10, "coverage": 1.0, "failure_rate": 0.0,
            "finished_runs": 100, "owners": 1.0, "dead_share": 0.0, "automation": 1.0,
            "synced": True}
    return Measures(**{**base, **kw})


@pytest.mark.parametrize(("changes", "phase"), [
    ({"connected": 1, "coverage": 0.1}, 1),
    ({"synced": False}, 1),
    ({"failure_rate": 0.25}, 2),
    ({"dead_share": 0.06}, 2),
    ({"coverage": 0.4}, 3),
    ({"owners": 0.7}, 3),
    ({"failure_rate": 0.15}, 3),
    ({"coverage": 0.6}, 4),
    ({"owners": 0.9}, 4),
    ({"dead_share": 0.015}, 4),
    ({"automation": 0.5}, 4),
    ({}, 5),
])
def test_the_phase_is_the_highest_whose_criteria_all_hold(changes: dict[str, Any],
                                                          phase: int) -> None:
    m = judge_maturity(measures(**changes))
    assert (m.phase, m.name) == (phase, PHASES[phase - 1])
    assert all(c.met for c in m.criteria if c.phase <= phase)
    assert m.missing == tuple(c for c in m.criteria if c.phase == phase + 1 and not c.met)
    if phase < 5:
        assert m.missing, "a phase below the last says what the next one needs"


_ratio = st.floats(min_value=0, max_value=1)


@given(_ratio, _ratio, _ratio, _ratio, _ratio, st.booleans(), st.integers(0, 20))
def test_improving_a_measure_never_lowers_the_phase(coverage: float, failure: float,
                                                     owners: float, dead: float, auto: float,
                                                     synced: bool, connected: int) -> None:
    m = measures(coverage=coverage, failure_rate=failure, owners=owners, dead_share=dead,
                 automation=auto, synced=synced, connected=connected)
    phase = judge_maturity(m).phase
    better = [replace(m, coverage=1.0), replace(m, failure_rate=0.0), replace(m, owners=1.0),
              replace(m, dead_share=0.0), replace(m, automation=1.0), replace(m, synced=True),
              replace(m, connected=connected + 1)]
    assert all(judge_maturity(b).phase >= phase for b in better)


# -- measured from real stores ------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Any:
    h = Hub(tmp_path, store_url=store_url, flow="""  contacts:
    entity: contact
    from: a
    to: b
    schedule: "*/5 * * * *"
  archive:
    entity: contact
    from: a
    to: b
    enabled: false""")
    yield h
    h.close()


def test_gather_measures_a_real_sync_and_the_judgements_follow(hub: Hub) -> None:
    rows = [contact(i) for i in range(10)]
    rows[3]["email"] = "not-an-email"
    write_csv(hub.a / "contacts.csv", rows)
    assert hub.sync().status == "partial"
    facts = gather(hub.settings, hub.store)
    assert facts.records == {"contact": 9}
    assert [(g.flow, g.system, g.entity, g.stage, g.total, g.new) for g in facts.dead] == [
        ("contacts", "a", "contact", "validate", 1, 1)]
    assert facts.today["a"] == 9 and facts.today["b"] == 9 and facts.today["mailbox"] == 0
    assert [r.status for r in facts.flow("contacts").recent] == ["partial"]
    assert facts.flow("contacts").week == {"partial": 1}
    assert facts.flow("archive").recent == ()

    ov = judge(hub.settings, facts)
    states = {s.name: s.state for s in ov.map.systems}
    assert states == {"a": "failing", "b": "failing", "mailbox": "disconnected"}
    kinds = {s.kind: s for s in ov.steps}
    assert kinds["data-quality"].figures == {"share": 0.1, "dead": 1, "invalid": 1,
                                             "records": 9}
    assert kinds["assign-owner"].subject == "mailbox"
    assert ov.maturity.phase == 2  # two systems connected, records delivered, 10% dead

    # Fixed at the source and synced again: the dead letter closes, the flow is healthy.
    rows[3]["email"] = "person3@example.com"
    rows[3]["updated_at"] = "2024-06-01T10:00:00Z"
    write_csv(hub.a / "contacts.csv", rows)
    assert hub.sync(full=True).status == "succeeded"
    ov = overview(hub.settings, hub.store)
    assert {s.name: s.state for s in ov.map.systems}["a"] == "healthy"
    assert not [s for s in ov.steps if s.kind in ("data-quality", "fix-flow")]
    assert ov.facts.records == {"contact": 10}


def test_gather_on_an_empty_store(hub: Hub) -> None:
    facts = gather(hub.settings, hub.store)
    assert (facts.records, facts.dead) == ({}, ())
    assert all(v == 0 for v in facts.today.values())
    ov = judge(hub.settings, facts)
    assert ov.maturity.phase == 1
    assert {f.name: f.state for f in ov.map.flows} == {"contacts": "stale",
                                                       "archive": "disabled"}


# -- listings shared with the CLI ---------------------------------------------------------


def test_run_problems_say_what_to_do() -> None:
    assert run_problem({"status": "succeeded", "dead_lettered": 0, "write_failed": 0}) is None
    failed = run_problem({"status": "failed", "error": "Jira refused the token"})
    assert failed == ("The run stopped: Jira refused the token. Fix that, then run the flow "
                      "again.")
    partial = run_problem({"status": "partial", "dead_lettered": 2, "write_failed": 1,
                           "pending": 4})
    assert partial is not None and "3 records could not be synced" in partial
    assert "open Dead letters" in partial and "4 deliveries are waiting" in partial


def test_run_rows_and_dead_letter_rows_add_durations_and_advice(hub: Hub) -> None:
    rows = [contact(i) for i in range(3)]
    rows[1]["email"] = "broken"
    write_csv(hub.a / "contacts.csv", rows)
    hub.sync()
    (run,) = run_rows(hub.store, "contacts")
    assert run["duration_seconds"] is not None and run["duration_seconds"] >= 0
    assert run["skip_reasons"] == {} and "1 record could not be synced" in run["problem"]
    (dead,) = dead_letter_rows(hub.store)
    assert "payload" not in dead
    assert dead["advice"].startswith("the contact from a breaks a rule")
    assert dead_letter_rows(hub.store, entity="company") == []


def test_parse_time_accepts_dates_and_offsets_and_explains_garbage() -> None:
    assert parse_time("2026-11-01") == "2026-11-01T00:00:00.000000Z"
    assert parse_time("2026-11-01T10:00:00+02:00") == "2026-11-01T08:00:00.000000Z"
    with pytest.raises(ValueError, match="use e.g. 2026-11-01"):
        parse_time("yesterday")


# -- the map's drawing --------------------------------------------------------------------


def test_layout_puts_categories_in_columns_and_routes_long_legs_under_the_boxes(
        landscape: Settings) -> None:
    m = silo_map(landscape, Facts(NOW))
    lay = layout(m)
    assert [c.category for c in lay.columns] == list(m.categories)
    boxes = {b.system.name: b for b in lay.boxes}
    assert set(boxes) == set(landscape.systems)
    by_col = {c.category: c.x for c in lay.columns}
    assert all(b.x == by_col[b.system.category] for b in boxes.values())
    spots = [(b.x, b.y) for b in boxes.values()]
    assert len(set(spots)) == len(spots), "no two boxes in the same place"
    lowest = max(b.y for b in boxes.values()) + BOX_H
    for cv in lay.curves:
        a, b = boxes[cv.edge.source], boxes[cv.edge.target]
        if abs(a.x - b.x) > COL_W * 2:  # skips a column: its lane is below every box
            assert cv.label_y > lowest
        assert cv.path.startswith("M ")
    assert lay.width >= max(b.x for b in boxes.values()) + COL_W
    assert lay.height > lowest
