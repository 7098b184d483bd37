"""Alert delivery: the JSON alert contract and MQTT v5 publishing. Imports only the core.

Store-and-forward sits above :class:`MqttPublisher` (one connection, acknowledgements
tracked): :class:`Outbox` (durable SQLite file) and :class:`Forwarder` (delivery through
the :class:`DestinationChain`, local broker first). See docs/delivery.md.
"""

from edgepipe.delivery.broker import BrokerTls, MosquittoBroker, broker_answers
from edgepipe.delivery.chain import Destination, DestinationChain
from edgepipe.delivery.forwarder import Forwarder, ForwarderStats
from edgepipe.delivery.message import (
    SCHEMA_VERSION,
    alert_from_json,
    alert_schema,
    alert_to_dict,
    alert_to_json,
    format_rfc3339_ns,
    parse_rfc3339_ns,
)
from edgepipe.delivery.mqtt import BrokerConfig, MqttPublisher, TlsConfig
from edgepipe.delivery.outbox import DropReport, NewMessage, Outbox, OutboxMessage, Priority
from edgepipe.delivery.outbox_config import OutboxConfig, default_outbox_path
from edgepipe.delivery.subscriber import (
    AlertSubscriber,
    MessageSubscriber,
    ReceivedAlert,
    ReceivedMessage,
)
from edgepipe.delivery.topics import alert_topic, sanitize_segment, status_topic

__all__ = [
    "SCHEMA_VERSION",
    "alert_from_json",
    "alert_schema",
    "alert_to_dict",
    "alert_to_json",
    "format_rfc3339_ns",
    "parse_rfc3339_ns",
    "alert_topic",
    "sanitize_segment",
    "status_topic",
    "BrokerConfig",
    "TlsConfig",
    "MqttPublisher",
    "AlertSubscriber",
    "MessageSubscriber",
    "ReceivedAlert",
    "ReceivedMessage",
    "BrokerTls",
    "MosquittoBroker",
    "broker_answers",
    "Destination",
    "DestinationChain",
    "Forwarder",
    "ForwarderStats",
    "DropReport",
    "NewMessage",
    "Outbox",
    "OutboxMessage",
    "Priority",
    "OutboxConfig",
    "default_outbox_path",
]
