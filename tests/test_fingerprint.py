"""Fingerprints: what groups together, what stays apart, and why each component counted or not."""

import hashlib
import json
from dataclasses import replace

import pytest

from incidents.fingerprinting import (
    FINGERPRINT_VERSION,
    Fingerprint,
    FingerprintRuleSpec,
    compute_fingerprint,
    rule_matches,
    rule_problems,
)
from incidents.fingerprinting import components as components_module
from incidents.sources.base import Frame, Signal, SignalKind


def error(**overrides) -> Signal:
    """A KeyError raised in the orders API, as a Sentry-like source would deliver it."""
    values = {
        "source": "sentry",
        "kind": SignalKind.ERROR,
        "title": "KeyError: 'sku'",
        "service": "orders-api",
        "environment": "production",
        "exception_type": "KeyError",
        "exception_value": "'sku'",
        "frames": [
            Frame(module="django.core.handlers.base", function="_get_response", lineno=197, in_app=False),
            Frame(module="orders.views", function="create_order", lineno=42),
            Frame(module="orders.pricing", function="price_for", lineno=17),
            Frame(module="decimal", function="__new__", lineno=3, in_app=False),
        ],
        "path": "/api/orders/1234/items",
        "method": "post",
    }
    values.update(overrides)
    return Signal(**values)


def alert(**overrides) -> Signal:
    """A Prometheus Alertmanager alert firing on one pod."""
    values = {
        "source": "alertmanager",
        "kind": SignalKind.ALERT,
        "title": "High error rate on checkout",
        "service": "checkout",
        "alertname": "HighErrorRate",
        "labels": {
            "alertname": "HighErrorRate",
            "severity": "critical",
            "namespace": "shop",
            "instance": "10.0.3.17:9100",
            "pod": "checkout-7d9f8c6b5-x2x4z",
        },
    }
    values.update(overrides)
    return Signal(**values)


def log(**overrides) -> Signal:
    values = {
        "source": "log",
        "kind": SignalKind.LOG,
        "service": "billing",
        "message": "Charge 8812 failed for customer 1042 after 3 retries (took 1532ms)",
        "labels": {"logger": "billing.charges"},
    }
    values.update(overrides)
    return Signal(**values)


def component(fingerprint: Fingerprint, name: str):
    return next(c for c in fingerprint.components if c.name == name)


def contributing(fingerprint: Fingerprint) -> dict[str, tuple[str, ...]]:
    return {c.name: c.values for c in fingerprint.components if c.contributes}


# --- the shape of a fingerprint -----------------------------------------------------------------


def test_fingerprint_shape():
    fingerprint = compute_fingerprint(error())
    assert len(fingerprint.hash) == 64 and int(fingerprint.hash, 16) >= 0
    assert fingerprint.version == FINGERPRINT_VERSION == 2
    assert fingerprint.strategy == "default:error"
    stored = json.loads(json.dumps(fingerprint.as_dict()))
    assert stored["hash"] == fingerprint.hash
    assert stored["strategy"] == "default:error"
    assert [c["name"] for c in stored["components"]] == [c.name for c in fingerprint.components]
    assert all(c.hint for c in fingerprint.components)


def test_snapshot_of_the_default_error_fingerprint():
    """If this fails the algorithm changed: bump FINGERPRINT_VERSION, then update the expected hash."""
    fingerprint = compute_fingerprint(error())
    assert contributing(fingerprint) == {
        "service": ("orders-api",),
        "exception_type": ("KeyError",),
        "frames": ("orders.views:create_order", "orders.pricing:price_for"),
        "route": ("/api/orders/{id}/items",),
        "method": ("POST",),
    }
    assert fingerprint.hash == SNAPSHOT_ERROR_HASH


SNAPSHOT_ERROR_HASH = "6cf72038f65842edeb17006d05395309b0bbcde821d4b0ed83f169a2ba103224"


def test_the_hash_is_sha256_of_the_canonical_json():
    fingerprint = compute_fingerprint(error())
    canonical = json.dumps(
        [
            fingerprint.version,
            fingerprint.strategy,
            [[c.name, list(c.values)] for c in fingerprint.components if c.contributes],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert fingerprint.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_version_is_part_of_the_hash(monkeypatch):
    before = compute_fingerprint(error())
    monkeypatch.setattr(components_module, "FINGERPRINT_VERSION", 3)
    after = compute_fingerprint(error())
    assert after.version == 3
    assert after.hash != before.hash


def test_the_strategy_is_part_of_the_hash():
    by_key = compute_fingerprint(log(dedup_key="billing.charges"))
    by_rule = compute_fingerprint(log(), [FingerprintRuleSpec(name="r", static_key="billing.charges")])
    assert component(by_key, "dedup_key").values == component(by_rule, "static_key").values
    assert by_key.hash != by_rule.hash


# --- errors ---------------------------------------------------------------------------------------


def test_line_numbers_do_not_change_the_hash():
    moved = [replace(frame, lineno=(frame.lineno or 0) + 40) for frame in error().frames]
    assert compute_fingerprint(error(frames=moved)).hash == compute_fingerprint(error()).hash


def test_library_frames_do_not_change_the_hash():
    other_library = [
        Frame(module="rest_framework.views", function="dispatch", lineno=506, in_app=False),
        *[frame for frame in error().frames if frame.in_app],
        Frame(module="json.decoder", function="decode", lineno=337, in_app=False),
    ]
    fingerprint = compute_fingerprint(error(frames=other_library))
    assert fingerprint.hash == compute_fingerprint(error()).hash
    assert "library frames left out" in component(fingerprint, "frames").hint


def test_a_different_in_app_function_is_a_different_error():
    frames = [*error().frames]
    frames[2] = replace(frames[2], function="discount_for")
    assert compute_fingerprint(error(frames=frames)).hash != compute_fingerprint(error()).hash


def test_different_exception_types_are_different_errors():
    assert compute_fingerprint(error(exception_type="ValueError")).hash != compute_fingerprint(error()).hash


def test_builtins_prefix_does_not_matter():
    assert compute_fingerprint(error(exception_type="builtins.KeyError")).hash == compute_fingerprint(error()).hash


def test_different_services_are_different_errors():
    assert compute_fingerprint(error(service="payments-api")).hash != compute_fingerprint(error()).hash


def test_environment_does_not_contribute():
    staging = compute_fingerprint(error(environment="staging"))
    assert staging.hash == compute_fingerprint(error()).hash
    environment = component(staging, "environment")
    assert environment.values == ("staging",)
    assert not environment.contributes
    assert "staging and production" in environment.hint


def test_ids_in_the_request_path_do_not_split():
    other_order = compute_fingerprint(error(path="/api/orders/98/items?debug=1"))
    assert other_order.hash == compute_fingerprint(error()).hash
    assert component(other_order, "route").values == ("/api/orders/{id}/items",)


def test_the_exception_message_is_left_out_when_there_is_a_stack_trace():
    fingerprint = compute_fingerprint(error(exception_value="'color'"))
    assert fingerprint.hash == compute_fingerprint(error()).hash
    message = component(fingerprint, "message")
    assert not message.contributes
    assert "stack trace" in message.hint


def test_without_in_app_frames_all_frames_count():
    library_only = [
        Frame(module="redis.connection", function="connect", lineno=10, in_app=False),
        Frame(module="socket", function="create_connection", lineno=20, in_app=False),
    ]
    fingerprint = compute_fingerprint(error(frames=library_only, exception_type="ConnectionError"))
    frames = component(fingerprint, "frames")
    assert frames.contributes
    assert frames.values == ("redis.connection:connect", "socket:create_connection")
    assert "no in-app frames" in frames.hint


def test_recursion_depth_is_not_a_different_bug():
    def recursion(depth):
        return [Frame(module="tree", function="walk", lineno=5)] * depth

    assert (
        compute_fingerprint(error(frames=recursion(10))).hash == compute_fingerprint(error(frames=recursion(997))).hash
    )


def test_frames_without_module_use_a_stable_file_name():
    in_one_checkout = [Frame(filename="/srv/releases/41/orders/views.py", function="create_order", lineno=1)]
    in_another = [Frame(filename="/app/orders/views.py", function="create_order", lineno=9)]
    first = compute_fingerprint(error(frames=in_one_checkout))
    assert first.hash == compute_fingerprint(error(frames=in_another)).hash
    assert component(first, "frames").values == ("orders/views.py:create_order",)


def test_without_frames_the_message_template_stands_in():
    first = compute_fingerprint(error(frames=[], exception_value="order 1234 has no line 7"))
    second = compute_fingerprint(error(frames=[], exception_value="order 98 has no line 2"))
    other = compute_fingerprint(error(frames=[], exception_value="order 98 was cancelled"))
    assert first.hash == second.hash != other.hash
    assert component(first, "frames").hint == "no stack trace"
    assert component(first, "message").contributes
    assert component(first, "message").values == ("order <num> has no line <num>",)


# --- alerts ---------------------------------------------------------------------------------------


def test_alert_on_another_pod_is_the_same_incident():
    moved = alert(labels={**alert().labels, "instance": "10.0.9.2:9100", "pod": "checkout-5c6d7-abcde"})
    fingerprint = compute_fingerprint(moved)
    assert fingerprint.strategy == "default:alert"
    assert fingerprint.hash == compute_fingerprint(alert()).hash
    labels = component(fingerprint, "labels")
    assert labels.values == ("namespace=shop", "severity=critical")
    assert "instance, pod" in labels.hint


def test_alert_with_another_stable_label_is_another_incident():
    other_namespace = alert(labels={**alert().labels, "namespace": "staging-shop"})
    assert compute_fingerprint(other_namespace).hash != compute_fingerprint(alert()).hash


def test_alert_grouping_labels_from_the_source_win():
    grouped = alert(grouping_labels=["alertname", "namespace"])
    fingerprint = compute_fingerprint(grouped)
    assert component(fingerprint, "labels").values == ("namespace=shop",)
    other_severity = alert(grouping_labels=["alertname", "namespace"], labels={**alert().labels, "severity": "warning"})
    assert compute_fingerprint(other_severity).hash == fingerprint.hash


def test_alert_title_counts_only_without_an_alertname():
    assert compute_fingerprint(alert(title="Error rate 7%")).hash == compute_fingerprint(alert()).hash
    unnamed = compute_fingerprint(alert(alertname="", labels={}, title="Disk 91% full on db-1"))
    assert component(unnamed, "message").contributes
    assert unnamed.hash == compute_fingerprint(alert(alertname="", labels={}, title="Disk 97% full on db-1")).hash


# --- logs -----------------------------------------------------------------------------------------


def test_log_ids_numbers_and_timestamps_do_not_split():
    again = log(message="Charge 9 failed for customer 77 after 5 retries (took 20ms)")
    assert compute_fingerprint(again).hash == compute_fingerprint(log()).hash


def test_log_message_shape_splits():
    refunded = log(message="Charge 8812 refunded for customer 1042")
    assert compute_fingerprint(refunded).hash != compute_fingerprint(log()).hash


def test_log_components():
    fingerprint = compute_fingerprint(log(exception_type="stripe.error.CardError", path="/pay/42", method="get"))
    assert fingerprint.strategy == "default:log"
    assert contributing(fingerprint) == {
        "service": ("billing",),
        "message": ("Charge <num> failed for customer <num> after <num> retries (took <num>)",),
        "logger": ("billing.charges",),
        "exception_type": ("stripe.error.CardError",),
        "route": ("/pay/{id}",),
        "method": ("GET",),
    }


def test_another_logger_is_another_incident():
    other = log(labels={"logger": "billing.refunds"})
    assert compute_fingerprint(other).hash != compute_fingerprint(log()).hash


# --- precedence -----------------------------------------------------------------------------------


def test_dedup_key_overrides_everything():
    first = compute_fingerprint(error(dedup_key="orders/KeyError"))
    second = compute_fingerprint(log(service="other", message="anything at all", dedup_key="orders/KeyError"))
    assert first.hash == second.hash
    assert first.strategy == "dedup_key"
    assert contributing(first) == {"dedup_key": ("orders/KeyError",)}
    assert component(first, "exception_type").hint == "overridden by dedup key"
    assert component(first, "environment").hint.startswith("left out")
    assert first.hash != compute_fingerprint(error(dedup_key="orders/ValueError")).hash


def test_dedup_key_beats_a_matching_rule():
    rule = FingerprintRuleSpec(name="everything", static_key="all")
    assert compute_fingerprint(error(dedup_key="k"), [rule]).strategy == "dedup_key"


def test_a_matching_rule_beats_the_default():
    rule = FingerprintRuleSpec(name="by-alertname", alertname="HighErrorRate", group_by=("service", "alertname"))
    first = compute_fingerprint(alert(), [rule])
    other_namespace = compute_fingerprint(alert(labels={"namespace": "elsewhere"}), [rule])
    assert first.strategy == "rule:by-alertname"
    assert first.hash == other_namespace.hash
    assert contributing(first) == {"service": ("checkout",), "alertname": ("HighErrorRate",)}
    assert "by-alertname" in component(first, "labels").hint
    assert first.hash != compute_fingerprint(alert()).hash


def test_the_first_matching_rule_wins():
    rules = [
        FingerprintRuleSpec(name="not-me", service="elsewhere", static_key="x"),
        FingerprintRuleSpec(name="me", service="checkout", static_key="y"),
        FingerprintRuleSpec(name="too-late", static_key="z"),
    ]
    assert compute_fingerprint(alert(), rules).strategy == "rule:me"


def test_static_key_groups_across_services_unless_asked():
    rule = FingerprintRuleSpec(name="db-down", message_pattern=r"could not connect to server", static_key="db")
    first = error(frames=[], exception_value="could not connect to server: Connection refused")
    second = log(message="psycopg: could not connect to server: timeout")
    assert compute_fingerprint(first, [rule]).hash == compute_fingerprint(second, [rule]).hash
    per_service = replace(rule, group_by=("service",))
    assert compute_fingerprint(first, [per_service]).hash != compute_fingerprint(second, [per_service]).hash


def test_rule_by_label():
    rule = FingerprintRuleSpec(name="per-region", group_by=("service", "label:region"))
    east = compute_fingerprint(alert(labels={"region": "eu-east"}), [rule])
    west = compute_fingerprint(alert(labels={"region": "eu-west"}), [rule])
    missing = compute_fingerprint(alert(labels={}), [rule])
    assert east.hash != west.hash
    assert component(east, "label:region").values == ("region=eu-east",)
    assert "missing" in component(missing, "label:region").hint


def test_rule_with_only_matchers_groups_every_match_under_its_name():
    rule = FingerprintRuleSpec(name="noisy", service="checkout")
    assert compute_fingerprint(alert(), [rule]).hash == compute_fingerprint(alert(alertname="Other"), [rule]).hash


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        (FingerprintRuleSpec(name="r"), True),
        (FingerprintRuleSpec(name="r", service="orders-api"), True),
        (FingerprintRuleSpec(name="r", service="orders"), False),
        (FingerprintRuleSpec(name="r", exception_type="KeyError"), True),
        (FingerprintRuleSpec(name="r", exception_type="LookupError"), False),
        (FingerprintRuleSpec(name="r", message_pattern=r"KeyError: '\w+'"), True),
        (FingerprintRuleSpec(name="r", message_pattern=r"ValueError"), False),
        (FingerprintRuleSpec(name="r", message_pattern=r"(unclosed"), False),
        (FingerprintRuleSpec(name="r", label_matchers=(("team", "pay.*"),)), True),
        (FingerprintRuleSpec(name="r", label_matchers=(("team", "pay"),)), False),
        (FingerprintRuleSpec(name="r", label_matchers=(("missing", ""),)), True),
        (FingerprintRuleSpec(name="r", service="orders-api", alertname="X"), False),
    ],
)
def test_rule_matching(rule, matches):
    assert rule_matches(rule, error(labels={"team": "payments"})) is matches


def test_rule_matches_the_unqualified_exception_class():
    rule = FingerprintRuleSpec(name="r", exception_type="UniqueViolation", static_key="dup")
    signal = error(exception_type="psycopg.errors.UniqueViolation")
    assert rule_matches(rule, signal)
    assert rule_matches(replace(rule, exception_type="psycopg.errors.UniqueViolation"), signal)


def test_rule_problems():
    assert rule_problems(FingerprintRuleSpec(name="ok", group_by=("service", "label:region"))) == {}
    problems = rule_problems(
        FingerprintRuleSpec(
            name="bad", message_pattern="(", label_matchers=(("a", "["),), group_by=("service", "colour", "label:")
        )
    )
    assert set(problems) == {"message_pattern", "label_matchers", "group_by"}
    assert "colour" in problems["group_by"]


# --- fallback -------------------------------------------------------------------------------------


def test_fallback_when_nothing_identifies_the_problem():
    bare = Signal(source="generic", kind="heartbeat", service="api", title="Job 12 crashed at 03:04:05")
    fingerprint = compute_fingerprint(bare)
    assert fingerprint.strategy == "fallback"
    assert contributing(fingerprint) == {"service": ("api",), "title": ("Job <num> crashed at <ts>",)}
    again = Signal(source="generic", kind="heartbeat", service="api", title="Job 7 crashed at 11:00:00")
    assert compute_fingerprint(again).hash == fingerprint.hash


def test_an_error_with_only_a_title_groups_by_its_template():
    bare = Signal(source="generic", kind=SignalKind.ERROR, service="api", title="Job 12 crashed")
    fingerprint = compute_fingerprint(bare)
    assert fingerprint.strategy == "default:error"
    assert component(fingerprint, "message").values == ("Job <num> crashed",)


def test_an_error_with_nothing_in_it_falls_back():
    fingerprint = compute_fingerprint(Signal(source="generic", kind=SignalKind.ERROR, service="api"))
    assert fingerprint.strategy == "fallback"
    assert contributing(fingerprint) == {"service": ("api",), "title": ()}
    assert not component(fingerprint, "exception_type").contributes


def test_fallback_for_an_unknown_kind_and_for_an_empty_signal():
    assert compute_fingerprint(Signal(source="x", kind="metric", title="hello")).strategy == "fallback"
    empty = compute_fingerprint(Signal(source="x"))
    assert empty.strategy == "fallback"
    assert component(empty, "title").contributes


def test_rule_by_logger():
    rule = FingerprintRuleSpec(name="per-logger", service="billing", group_by=("service", "logger"))
    first = compute_fingerprint(log(message="anything"), [rule])
    second = compute_fingerprint(log(message="something else entirely"), [rule])
    assert first.hash == second.hash
    assert contributing(first) == {"service": ("billing",), "logger": ("billing.charges",)}
