"""`/` is a small page that sends people to the admin, the API docs, health and metrics."""

import re


def test_the_root_links_to_where_people_go(client, db):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<title>Quench</title>" in page
    links = re.findall(r'href="([^"]+)"', page)
    assert links == ["/admin/", "/api/docs/", "/api/schema/", "/healthz", "/metrics"]
    for link in links:  # every link leads somewhere (the admin to its login page)
        answer = client.get(link, follow=True)
        assert answer.status_code in (200, 503), (link, answer.status_code)  # 503: healthz with no cluster
        assert answer.redirect_chain in ([], [("/admin/login/?next=/admin/", 302)]), link


def test_only_get(client, db):
    assert client.post("/").status_code == 405
