"""Two-way syncs in the configuration: direction, conflict policies, match keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.config.validate import parse_config
from sfsync.core.conflicts import ConflictRules, Policy, Side
from sfsync.spi.registry import Registry

from .conftest import GOOD, Check

TWO_WAY = GOOD.replace("    mode: polling\n", "    direction: two_way\n    mode: polling\n")


def with_object(extra: str, text: str = TWO_WAY) -> str:
    """``text`` with lines added to the first object (indented as under `- name: Account`)."""
    lines = "".join(f"        {line}\n" for line in extra.strip("\n").splitlines())
    return text.replace(
        "        fields: [Id, Name]\n", "        fields: [Id, Name, Email, Phone]\n" + lines
    )


def test_a_two_way_sync_with_policies(registry: Registry) -> None:
    config = parse_config(
        with_object(
            """
conflicts:
  policy: field_ownership
  default_owner: external
  owners: {Name: salesforce}
  fields: {Phone: newest_wins}
match_on: [Email, Id]
"""
        ),
        registry,
    )
    (sync,) = config.syncs
    assert sync.direction == "two_way"
    (obj,) = sync.objects
    assert obj.match_on == ("Email", "Id")
    rules = obj.conflicts.to_rules()
    assert rules == ConflictRules(
        policy=Policy.FIELD_OWNERSHIP,
        fields={"Phone": Policy.NEWEST_WINS},
        owners={"Name": Side.SALESFORCE},
        default_owner=Side.EXTERNAL,
    )
    assert rules.owner_of("email") is Side.EXTERNAL
    assert rules.policy_for("phone") is Policy.NEWEST_WINS


def test_defaults_are_one_way_and_manual(registry: Registry) -> None:
    (sync,) = parse_config(GOOD, registry).syncs
    assert sync.direction == "one_way"
    assert sync.objects[0].conflicts.to_rules() == ConflictRules(policy=Policy.MANUAL)
    assert sync.objects[0].match_on == ()


@pytest.mark.parametrize(
    ("extra", "field", "message", "fix"),
    [
        (
            "conflicts: {policy: newest_win}",
            "syncs[0].objects[0].conflicts.policy",
            "'newest_win' is not allowed",
            "did you mean 'newest_wins'",
        ),
        (
            "conflicts: {policy: field_ownership, owners: {Name: crm}}",
            "syncs[0].objects[0].conflicts.owners.Name",
            "'crm' is not allowed",
            "salesforce, external",
        ),
        (
            "conflicts: {policy: manual, owners: {Name: external}}",
            "syncs[0].objects[0].conflicts.owners",
            "no field is decided by field_ownership",
            "policy: field_ownership",
        ),
        (
            "conflicts: {fields: {Phone: manual, phone: newest_wins}}",
            "syncs[0].objects[0].conflicts.fields",
            "'phone' is listed twice",
            "case-insensitive",
        ),
        (
            "conflicts: {fields: {Fax: manual}}",
            "syncs[0].objects[0].conflicts.fields.Fax",
            "'Fax' is not in the object's fields list",
            "add Fax to fields",
        ),
        (
            "match_on: [Emial]",
            "syncs[0].objects[0].match_on[0]",
            "'Emial' is not in the object's fields list",
            "did you mean Email",
        ),
        (
            "conflicts: {policy: field_ownership, owners: {Name: salesforce}, default_owner: db}",
            "syncs[0].objects[0].conflicts.default_owner",
            "'db' is not allowed",
            "salesforce, external",
        ),
    ],
)
def test_conflict_settings_problems(
    check: Check, extra: str, field: str, message: str, fix: str
) -> None:
    problems = check(with_object(extra))
    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert problem.field == field
    assert message in problem.message
    assert fix in problem.fix


@pytest.mark.parametrize("key", ["conflicts: {policy: manual}", "match_on: [Email]"])
def test_two_way_settings_on_a_one_way_sync_are_refused(check: Check, key: str) -> None:
    (problem,) = check(with_object(key, GOOD))
    assert "only applies to two-way syncs" in problem.message
    assert "direction: two_way" in problem.fix


def test_a_two_way_sync_needs_salesforce_on_exactly_one_side(check: Check) -> None:
    text = TWO_WAY.replace(
        "  db:\n", "  db2:\n    type: sqlite\n    url: sqlite:///other.db\n  db:\n"
    ).replace("    source: crm\n", "    source: db2\n")
    (problem,) = check(text)
    assert problem.field == "syncs[0].direction"
    assert "neither side is a Salesforce connection" in problem.message


def test_a_two_way_sync_reads_and_writes_both_sides(check: Check) -> None:
    text = TWO_WAY.replace(
        "  db:\n    type: sqlite\n    url: sqlite:///demo.db\n",
        "  db:\n    type: readonly\n    path: x\n",
    ).replace("    source: crm\n    target: db\n", "    source: db\n    target: crm\n")
    (problem,) = check(text)
    assert problem.field == "syncs[0].source"
    assert "cannot be written to, and a two-way sync reads and writes both sides" in problem.message
    assert "sqlite" in problem.fix


def test_an_unknown_direction(check: Check) -> None:
    (problem,) = check(TWO_WAY.replace("two_way", "both"))
    assert problem.field == "syncs[0].direction"
    assert "one_way, two_way" in problem.fix


def test_the_example_in_docs_conflicts_is_valid(registry: Registry) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "conflicts.md"
    example = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    connections = GOOD.split("syncs:\n", 1)[0].replace("  db:\n", "  app_db:\n")
    config = parse_config(connections + example, registry)
    (sync,) = config.syncs
    assert sync.direction == "two_way"
    (obj,) = sync.objects
    assert obj.match_on == ("External_Id__c", "Email")
    rules = obj.conflicts.to_rules()
    assert rules.owner_of("Phone") is Side.EXTERNAL
    assert rules.owner_of("Email") is Side.SALESFORCE
    assert rules.policy_for("Description") is Policy.NEWEST_WINS


def test_a_two_way_sync_claims_the_table_on_its_non_salesforce_side(check: Check) -> None:
    # Salesforce as the target: the table written is on the source side, db.
    two_way = TWO_WAY.replace(
        "    source: crm\n    target: db\n", "    source: db\n    target: crm\n"
    )
    text = two_way + (
        "  - name: accounts-copy\n"
        "    source: crm\n"
        "    target: db\n"
        "    mode: polling\n"
        "    objects:\n"
        "      - name: Account\n"
    )
    (problem,) = check(text)
    assert problem.field == "syncs[1].objects[0].name"
    assert "table 'account' on 'db' is already written by sync 'accounts'" in problem.message
