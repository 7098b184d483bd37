from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgepipe.delivery.topics import (
    alert_topic,
    sanitize_segment,
    status_topic,
    unsanitize_segment,
)


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("T1", "T1"),
        ("T1/HV", "T1%2FHV"),
        ("bay#3", "bay%233"),
        ("a+b", "a%2Bb"),
        ("50%", "50%25"),
        ("", "_"),
        ("nul\x00", "nul%00"),
        ("Trafo Süd", "Trafo Süd"),
    ],
    ids=["plain", "slash", "hash", "plus", "percent", "empty", "nul", "unicode"],
)
def test_segment_is_sanitised(name: str, segment: str) -> None:
    assert sanitize_segment(name) == segment


def test_alert_topic_has_exactly_five_levels_for_hostile_names() -> None:
    topic = alert_topic("sub/1", "T1/#/+", "sag/x")
    assert topic == "edgepipe/sub%2F1/alerts/T1%2F%23%2F%2B/sag%2Fx"
    assert len(topic.split("/")) == 5


def test_status_topic() -> None:
    assert status_topic("north+1") == "edgepipe/north%2B1/status"


@given(st.text())
def test_segment_is_publishable_and_reversible(name: str) -> None:
    seg = sanitize_segment(name)
    assert seg
    assert not set(seg) & {"/", "+", "#", "\x00"}
    assert unsanitize_segment(seg) == name  # the empty name too


@given(st.text(), st.text())
def test_distinct_names_never_share_a_topic(a: str, b: str) -> None:
    if a != b:  # "" and "_" included: the empty asset once shared "_"'s topic
        assert sanitize_segment(a) != sanitize_segment(b)


def test_the_empty_name_and_an_underscore_get_two_topics() -> None:
    assert alert_topic("s", "", "k") == "edgepipe/s/alerts/_/k"
    assert alert_topic("s", "_", "k") == "edgepipe/s/alerts/%5F/k"
