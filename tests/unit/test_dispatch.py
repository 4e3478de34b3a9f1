import json

from conveyor.adapters.memory import MemoryObjectStore, MemoryStarter
from conveyor.dispatch import dispatch, drops_from_message
from tests.events import load_event


def test_eventbridge_event_becomes_one_drop_with_its_version():
    drops = drops_from_message(json.dumps(load_event("s3/eventbridge_object_created.json")))
    assert len(drops) == 1
    assert drops[0].model == "doctor-visits"
    assert drops[0].object.key == "doctor-visits/incoming/german health 1986.csv"
    assert drops[0].object.version_id == "adbc714b-e7fc-4560-9e24-dbdfad734e46"


def test_s3_notification_keys_are_url_decoded():
    drops = drops_from_message(load_event("s3/s3_notification_object_created.json"))
    assert [d.object.key for d in drops] == ["doctor-visits/incoming/german health 1986.csv"]


def test_test_events_and_other_prefixes_start_nothing():
    assert drops_from_message(load_event("s3/s3_test_event.json")) == []
    event = load_event("s3/eventbridge_object_created.json")
    event["detail"]["object"]["key"] = "doctor-visits/accepted/x.csv"
    assert drops_from_message(event) == []
    assert drops_from_message("[]") == []


def test_a_duplicated_event_starts_one_execution():
    starter, store = MemoryStarter(), MemoryObjectStore()
    body = json.dumps(load_event("s3/eventbridge_object_created.json"))
    first = dispatch(body, starter=starter, store=store)
    second = dispatch(body, starter=starter, store=store)
    assert [o["outcome"] for o in first + second] == ["started", "duplicate"]
    assert len(starter.executions) == 1
    (payload,) = starter.executions.values()
    assert payload["detail"]["object"]["version-id"] == "adbc714b-e7fc-4560-9e24-dbdfad734e46"


def test_a_new_version_of_the_same_key_starts_a_new_execution():
    starter, store = MemoryStarter(), MemoryObjectStore()
    event = load_event("s3/eventbridge_object_created.json")
    dispatch(event, starter=starter, store=store)
    event["detail"]["object"]["version-id"] = "another-version"
    dispatch(event, starter=starter, store=store)
    assert len(starter.executions) == 2


def test_without_version_the_current_object_names_the_execution_and_gone_objects_are_skipped():
    starter, store = MemoryStarter(), MemoryObjectStore()
    event = load_event("s3/s3_notification_object_created.json")
    assert dispatch(event, starter=starter, store=store) == [
        {"key": "doctor-visits/incoming/german health 1986.csv", "outcome": "gone"}
    ]
    store.put("conveyor-data", "doctor-visits/incoming/german health 1986.csv", b"a,b\n1,2\n")
    (outcome,) = dispatch(event, starter=starter, store=store)
    assert outcome["outcome"] == "started"
    assert len(outcome["execution"]) <= 80
