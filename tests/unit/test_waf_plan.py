"""waf-block's pure pieces: the plan, the merge, row parsing, parameters and targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions.base import Limit
from serverless_remediation.remediation.actions.waf_block import (
    IP_SET_LIMIT,
    WafBlockParams,
    canonical,
    merge_entries,
    parse_rows,
    parse_target,
    plan_block,
)
from serverless_remediation.remediation.models import RejectedError

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
V4 = "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/blocked-v4/11111111-aaaa"
V6 = "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/blocked-v6/22222222-bbbb"


def params(**kw) -> WafBlockParams:
    return WafBlockParams(log_group="/aws/apigateway/orders", **kw)


def current(
    offenders: dict[str, int],
    v4: list[str] | None = None,
    v6: list[str] | None = None,
    ours: list[str] | None = None,
):
    ip_sets = {V4: {"version": "IPV4", "entries": list(v4 or [])}}
    if v6 is not None:
        ip_sets[V6] = {"version": "IPV6", "entries": list(v6)}
    return {
        "ip_sets": ip_sets,
        "addresses": list(ours or []),
        "offenders": [{"ip": k, "count": n} for k, n in offenders.items()],
    }


def test_offenders_over_threshold_are_added_with_an_expiry():
    plan = plan_block(
        current({"198.51.100.7": 812, "203.0.113.9": 150, "192.0.2.1": 99}, v4=["192.0.2.200/32"]),
        params(),
        NOW,
    )
    assert plan.verdict == "change"
    assert plan.after["addresses"] == ["198.51.100.7/32", "203.0.113.9/32"]
    assert plan.after["expires_at"] == (NOW + timedelta(minutes=240)).isoformat()
    assert plan.before == {"addresses": []}
    assert plan.after["requests"] == {"198.51.100.7/32": 812, "203.0.113.9/32": 150}
    assert plan.summary.startswith("block 2 address(es) for 240 min: 198.51.100.7/32 (812)")


def test_threshold_not_met_is_a_noop():
    plan = plan_block(current({"198.51.100.7": 99}), params(threshold=100), NOW)
    assert plan.verdict == "noop"
    assert "no address reached 100 requests in 60 min (highest: 99)" in plan.summary
    assert plan.after == plan.before


def test_allowlist_and_internal_addresses_are_never_blocked():
    offenders = {
        "198.51.100.7": 500,  # allowlisted by the /24
        "10.1.2.3": 500,  # a proxy inside the VPC
        "127.0.0.1": 500,
        "fe80::1": 500,
        "203.0.113.9": 500,
    }
    plan = plan_block(current(offenders, v6=[]), params(allowlist=["198.51.100.0/24"]), NOW)
    assert plan.after["addresses"] == ["203.0.113.9/32"]
    assert "4 allowlisted not blocked" in plan.summary


def test_addresses_already_held_exactly_or_by_a_wider_block_are_not_added_again():
    plan = plan_block(
        current(
            {"198.51.100.7": 500, "203.0.113.9": 500}, v4=["198.51.100.0/24", "203.0.113.9/32"]
        ),
        params(),
        NOW,
    )
    assert plan.verdict == "noop"
    assert "nothing new to block (2 already blocked)" in plan.summary


def test_earlier_blocks_are_carried_from_before_to_after():
    """``addresses`` are this action's own blocks, offending now or not: ``revert`` compares
    them with what ``read`` reports and removes only ``after - before``."""
    plan = plan_block(
        current(
            {"198.51.100.7": 500, "203.0.113.9": 500},
            v4=["192.0.2.1/32", "198.51.100.7/32"],
            ours=["192.0.2.1/32", "198.51.100.7/32"],
        ),
        params(),
        NOW,
    )
    assert plan.before["addresses"] == ["192.0.2.1/32", "198.51.100.7/32"]
    assert plan.after["addresses"] == ["192.0.2.1/32", "198.51.100.7/32", "203.0.113.9/32"]
    assert list(plan.after["requests"]) == ["203.0.113.9/32"]


def test_more_offenders_than_the_cap_escalates_and_changes_nothing():
    offenders = {f"198.51.100.{i}": 200 for i in range(1, 5)}
    plan = plan_block(current(offenders), params(max_addresses=3), NOW)
    assert plan.verdict == "escalate"
    assert "4 addresses over the threshold, more than the 3" in plan.summary
    assert plan.after == plan.before


def test_exactly_the_cap_is_blocked():
    offenders = {f"198.51.100.{i}": 200 for i in range(1, 4)}
    plan = plan_block(current(offenders), params(max_addresses=3), NOW)
    assert plan.verdict == "change"
    assert len(plan.after["addresses"]) == 3


def test_ip_set_limit_escalates():
    full = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(IP_SET_LIMIT - 1)]
    plan = plan_block(current({"198.51.100.7": 500, "203.0.113.9": 500}, v4=full), params(), NOW)
    assert plan.verdict == "escalate"
    assert f"would hold {IP_SET_LIMIT + 1} entries, over the WAF limit of {IP_SET_LIMIT}" in (
        plan.summary
    )


def test_ip_set_filled_exactly_to_the_limit_is_allowed():
    full = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(IP_SET_LIMIT - 1)]
    plan = plan_block(current({"198.51.100.7": 500}, v4=full), params(), NOW)
    assert plan.verdict == "change"
    assert plan.after["addresses"] == ["198.51.100.7/32"]


def test_ipv6_goes_to_the_ipv6_set_and_mapped_ipv4_to_the_ipv4_set():
    offenders = {
        "2001:DB8:0:0:0:0:0:7": 300,
        "2001:db8::7": 50,  # the same address spelled differently: counts add up
        "::ffff:198.51.100.7": 120,
    }
    plan = plan_block(current(offenders, v6=["2001:db8:1::/48"]), params(threshold=120), NOW)
    assert plan.after["addresses"] == ["198.51.100.7/32", "2001:db8::7/128"]
    assert plan.after["requests"]["2001:db8::7/128"] == 350


def test_ipv6_offenders_without_an_ipv6_set_escalate():
    plan = plan_block(current({"2001:db8::7": 300}), params(), NOW)
    assert plan.verdict == "escalate"
    assert "1 offender(s) with no IPV6 IP set in the target: 2001:db8::7/128 (300)" in (
        plan.summary
    )
    assert "nothing blocked" in plan.summary


def test_an_unroutable_offender_escalates_the_whole_plan_even_with_ipv4_to_block():
    """Blocking the IPv4 half while the IPv6 half keeps hammering, and calling it executed,
    would hide the rest of the attack: nothing is blocked, a human decides."""
    data = current(
        {"2001:db8::7": 300, "2001:db8::8": 200, "198.51.100.7": 300}, ours=["192.0.2.1/32"]
    )
    plan = plan_block(data, params(), NOW)
    assert plan.verdict == "escalate"
    assert "2 offender(s) with no IPV6 IP set" in plan.summary
    assert "2001:db8::7/128 (300), 2001:db8::8/128 (200)" in plan.summary
    assert "198.51.100.7" not in plan.summary.split(";")[0]
    assert plan.after == plan.before == {"addresses": ["192.0.2.1/32"]}


def test_an_ipv4_offender_with_only_an_ipv6_set_escalates():
    data = current({"198.51.100.7": 300})
    data["ip_sets"] = {V6: {"version": "IPV6", "entries": []}}
    plan = plan_block(data, params(), NOW)
    assert plan.verdict == "escalate"
    assert "with no IPV4 IP set in the target: 198.51.100.7/32 (300)" in plan.summary


def test_allowlisted_or_under_threshold_offenders_need_no_ip_set():
    data = current({"2001:db8::7": 300, "2001:db8::9": 5, "198.51.100.7": 300})
    plan = plan_block(data, params(allowlist=["2001:db8::/64"]), NOW)
    assert plan.verdict == "change"
    assert plan.after["addresses"] == ["198.51.100.7/32"]


def test_many_unroutable_offenders_are_cut_short():
    offenders = {f"2001:db8::{n:x}": 300 + n for n in range(1, 13)}
    plan = plan_block(current(offenders), params(), NOW)
    assert plan.verdict == "escalate"
    assert "12 offender(s)" in plan.summary
    assert "and 2 more" in plan.summary


def test_unparsable_addresses_are_ignored_and_counted():
    plan = plan_block(current({"not-an-ip": 900, "198.51.100.0/24": 900}), params(), NOW)
    assert plan.verdict == "noop"
    assert "2 unparsable row(s) ignored" in plan.summary


def test_plan_is_deterministic():
    data = current({"198.51.100.9": 300, "198.51.100.7": 300, "203.0.113.1": 900})
    first, second = plan_block(data, params(), NOW), plan_block(data, params(), NOW)
    assert first == second
    assert "203.0.113.1/32 (900), 198.51.100.7/32 (300), 198.51.100.9/32 (300)" in first.summary


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("198.51.100.7", "198.51.100.7/32"),
        (" 198.51.100.7 ", "198.51.100.7/32"),
        ("2001:0DB8::0007", "2001:db8::7/128"),
        ("::ffff:203.0.113.9", "203.0.113.9/32"),
        ("198.51.100.0/24", None),
        ("-", None),
    ],
)
def test_canonical(raw, expected):
    assert canonical(raw) == expected


def test_merge_keeps_others_entries_drops_duplicates_and_removes_exact_entries_only():
    entries = ["192.0.2.0/24", "198.51.100.7/32", "198.51.100.7/32", "2001:DB8::1/128"]
    merged = merge_entries(
        entries,
        add=["203.0.113.9/32", "2001:db8::1/128"],
        remove=["192.0.2.5/32", "198.51.100.7/32"],
    )
    assert merged == ["192.0.2.0/24", "2001:DB8::1/128", "203.0.113.9/32"]


def test_rows_parse_counts_and_fall_back_to_the_message():
    rows = [
        [{"field": "ip", "value": "198.51.100.7"}, {"field": "requests", "value": "812"}],
        [{"field": "ip", "value": "203.0.113.9"}, {"field": "requests", "value": "12.0"}],
        [{"field": "@message", "value": '{"ip": "192.0.2.1", "status": "401"}'}],
        [{"field": "@message", "value": "not json"}],
        [{"field": "ip", "value": "192.0.2.2"}, {"field": "requests", "value": "many"}],
    ]
    assert parse_rows(rows, "ip", "requests") == [
        {"ip": "198.51.100.7", "count": 812},
        {"ip": "203.0.113.9", "count": 12},
        {"ip": "192.0.2.1", "count": 1},
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"allowlist": ["not-a-cidr"]}, "not a CIDR"),
        ({"max_addresses": 0}, "max_addresses"),
        ({"ttl_minutes": 0}, "ttl_minutes"),
        ({"threshold": 0}, "threshold"),
        ({"log_group": ""}, "log_group is required"),
    ],
)
def test_bad_params_are_rejected(bad, message):
    with pytest.raises(RejectedError, match=message):
        WafBlockParams.from_dict({"log_group": "/aws/apigateway/orders", **bad})


def test_defaults_and_caps():
    from serverless_remediation.remediation.actions.waf_block import WafBlock

    made = WafBlockParams.from_dict({"log_group": "/aws/apigateway/orders"})
    assert (made.threshold, made.max_addresses, made.ttl_minutes) == (100, 50, 240)
    assert WafBlock.limits["allowlist"] is Limit.SUPERSET
    assert WafBlock.limits["max_addresses"] is Limit.AT_MOST
    assert WafBlock.limits["ttl_minutes"] is Limit.AT_MOST
    assert WafBlock.limits["threshold"] is Limit.AT_LEAST
    assert WafBlock.resources(f"{V4},{V6}") == [V4, V6]


@pytest.mark.parametrize(
    "target",
    [
        "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/acl/1",
        "arn:aws:lambda:eu-west-1:123456789012:function:x",
        f"{V4},{V4}",
        f"{V4},{V6},{V4.replace('v4', 'v5')}",
    ],
)
def test_bad_targets_are_rejected(target):
    with pytest.raises(RejectedError):
        parse_target(target)


def test_global_scope_target():
    (ref,) = parse_target("arn:aws:wafv2:us-east-1:123456789012:global/ipset/edge/abc")
    assert (ref.scope, ref.name, ref.id) == ("CLOUDFRONT", "edge", "abc")


def test_backoff_is_jittered_and_bounded():
    from serverless_remediation.remediation.actions import waf_block

    for attempt in range(8):
        limit = min(waf_block.BACKOFF_CAP_SECONDS, waf_block.BACKOFF_BASE_SECONDS * 2**attempt)
        waits = [waf_block.backoff(attempt) for _ in range(50)]
        assert all(0 <= w <= limit for w in waits)
        assert len(set(waits)) > 1  # jittered, not a fixed schedule
