"""The dashboard's SVG charts: values written out, data escaped, gaps left as gaps."""

import re

from incidents import charts


def test_bars_write_their_values_and_escape_their_labels():
    svg = str(charts.hbars([("<script>alert(1)</script>", 3), ("shop", 12)], title="Noisiest <services>"))

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg and "Noisiest &lt;services&gt;" in svg
    assert 'data-label="shop">12</text>' in svg
    # The longest bar spans the scale (12 → a scale of 20), the shorter one in proportion.
    widths = [float(width) for width in re.findall(r'class="bar" x="\d+" y="\d+" width="([\d.]+)"', svg)]
    assert widths[1] / widths[0] == 4.0


def test_stacked_bars_total_each_label():
    svg = str(
        charts.stacked_bars(
            ["12-01", "12-02"], {"P0": [1, 0], "P1": [2, 0]}, colours={"P0": "#b91c1c", "P1": "#ef4444"}, title="t"
        )
    )
    assert '<text class="value"' in svg and ">3</text>" in svg
    assert "<title>12-01: 2 P1</title>" in svg
    assert "12-02: " not in svg  # nothing stacked on an empty day


def test_lines_leave_gaps_for_missing_days():
    svg = str(charts.lines(["a", "b", "c", "d"], {"MTTA": [1.0, None, 2.0, 3.0]}, title="t"))
    assert svg.count("<circle") == 3
    assert svg.count("<polyline") == 1  # only c–d are joined; a stands alone
    assert "no data" in str(charts.lines(["a"], {"MTTA": [None]}, title="t"))
