from fulfilment.stock import CATALOG
from fulfilment.worker import handle


def test_reserving_an_order_holds_its_stock():
    message = {"type": "reserve", "payload": {"order_id": 5, "lines": [{"sku": "TENT-2P", "quantity": 2}]}}
    assert handle(message) == {"job": "reserve", "result": {"order_id": 5, "reserved": ["TENT-2P"]}}
    assert CATALOG["TENT-2P"].reserved == 2


def test_packing_spreads_items_over_boxes():
    items = [{"sku": "STOVE-1", "quantity": 4, "weight_g": 900}, {"sku": "TENT-2P", "quantity": 2, "weight_g": 2400}]
    payload = {"order_id": 6, "boxes": 2, "items": items}
    assert handle({"type": "pack", "payload": payload})["result"] == {"order_id": 6, "per_box": 3, "first": "TENT-2P"}


def test_shipping_prints_the_label():
    address = {
        "name": "Ada Lovelace",
        "street": "12 St James's Square",
        "postcode": "sw1y 4jh",
        "city": "London",
        "delivery_instructions": "Leave with the porter",
    }
    result = handle({"type": "ship", "payload": {"order_id": 7, "address": address}})["result"]
    assert result["label"] == (
        "ORDER 7 via DHL\nAda Lovelace\n12 St James's Square\nSW1Y 4JH London\nLeave with the porter"
    )
