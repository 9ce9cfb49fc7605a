from shop.search import search_products, tokenize, top_result


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("Pour-over Coffee, 1kg!") == ["pour", "over", "coffee", "1kg"]


def test_name_matches_rank_above_tag_matches_and_sold_out_items_go_last():
    names = [product["name"] for product in search_products("backpack outdoor")]
    assert names[0] == "Roll-top backpack"

    outdoor = [product["sku"] for product in search_products("outdoor")]
    assert outdoor[-1] == "BAG-101"  # sold out


def test_top_result_is_the_best_match():
    results = search_products("coffee mug")
    assert top_result(results)["sku"] == "MUG-002"
