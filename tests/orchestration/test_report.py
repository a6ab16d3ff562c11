"""The metric grid of a sweep: aggregation over seeds, the terminal table, the figures."""

import re
import statistics

import pytest

from phaselab.orchestration.report import aggregate, figures, format_grid


def _row(source, r, n, seed, ssim, psnr, zf_ssim, zf_psnr, eff):
    return {
        "cell": {"source": source, "acceleration": r, "num_acs": n, "seed": seed},
        "test_ssim": ssim,
        "test_psnr": psnr,
        "test_nrmse": 1.0 - ssim,
        "test_nmse": (1.0 - ssim) ** 2,
        "test_zf_ssim": zf_ssim,
        "test_zf_psnr": zf_psnr,
        "test_zf_nrmse": 1.0 - zf_ssim,
        "test_zf_nmse": (1.0 - zf_ssim) ** 2,
        "effective_acceleration": eff,
    }


# Two seeds of gt and zero at R=4/nACS=8, gt at R=2/nACS=8 and R=4/nACS=4 with one seed.
ROWS = [
    _row("gt", 4, 8, 0, 0.80, 30.0, 0.50, 20.0, 3.2),
    _row("gt", 4, 8, 1, 0.90, 32.0, 0.50, 20.0, 3.2),
    _row("zero", 4, 8, 0, 0.60, 25.0, 0.50, 20.0, 3.2),
    _row("zero", 4, 8, 1, 0.70, 28.0, 0.50, 20.0, 3.2),
    _row("gt", 2, 8, 0, 0.95, 36.0, 0.70, 25.0, 1.8),
    _row("gt", 4, 4, 0, 0.85, 31.0, 0.45, 19.0, 3.6),
]


def _entry(table, source, r, n):
    (entry,) = [e for e in table if (e["source"], e["acceleration"], e["num_acs"]) == (source, r, n)]
    return entry


def test_aggregate_means_and_sample_stds_over_seeds():
    table = aggregate(ROWS)
    gt = _entry(table, "gt", 4, 8)
    assert gt["seeds"] == 2
    assert gt["ssim_mean"] == pytest.approx(0.85)
    assert gt["ssim_std"] == pytest.approx(0.1 / 2**0.5)  # sample std (n-1) of 0.8, 0.9
    assert gt["psnr_mean"] == pytest.approx(31.0)
    assert gt["psnr_std"] == pytest.approx(2**0.5)  # |32-30| / sqrt(2)
    assert gt["nrmse_mean"] == pytest.approx(0.15)
    assert gt["nmse_mean"] == pytest.approx((0.2**2 + 0.1**2) / 2)
    assert gt["nmse_std"] == pytest.approx(statistics.stdev([0.04, 0.01]))
    assert gt["effective_acceleration"] == 3.2

    zero = _entry(table, "zero", 4, 8)
    assert zero["ssim_mean"] == pytest.approx(0.65)
    assert zero["psnr_mean"] == pytest.approx(26.5)
    assert zero["psnr_std"] == pytest.approx(3 / 2**0.5)

    single = _entry(table, "gt", 2, 8)
    assert single["seeds"] == 1
    assert single["ssim_mean"] == pytest.approx(0.95)
    assert single["ssim_std"] == 0.0
    assert single["effective_acceleration"] == 1.8


def test_aggregate_adds_one_zero_filled_row_per_mask():
    table = aggregate(ROWS)
    zf = [e for e in table if e["source"] == "zero_filled"]
    assert sorted((e["acceleration"], e["num_acs"]) for e in zf) == [(2, 8), (4, 4), (4, 8)]
    assert table[-3:] == zf  # after the sources
    r4 = _entry(table, "zero_filled", 4, 8)
    assert r4["seeds"] == 1  # it depends on the mask only, not on the source or the seed
    assert r4["ssim_mean"] == pytest.approx(0.50)
    assert r4["ssim_std"] == 0.0
    assert r4["psnr_mean"] == pytest.approx(20.0)
    assert r4["nrmse_mean"] == pytest.approx(0.50)
    assert r4["effective_acceleration"] == 3.2
    r2 = _entry(table, "zero_filled", 2, 8)
    assert (r2["ssim_mean"], r2["psnr_mean"], r2["effective_acceleration"]) == (
        pytest.approx(0.70),
        pytest.approx(25.0),
        1.8,
    )
    assert _entry(table, "zero_filled", 4, 4)["ssim_mean"] == pytest.approx(0.45)
    assert len(table) == 4 + 3


def test_aggregate_leaves_out_metrics_no_row_has():
    rows = [{"cell": {"source": "gt", "acceleration": 4, "num_acs": 8, "seed": 0}, "test_ssim": 0.7}]
    (gt, zf) = aggregate(rows)
    assert gt["ssim_mean"] == pytest.approx(0.7)
    assert "psnr_mean" not in gt and "psnr_std" not in gt
    assert gt["effective_acceleration"] is None
    assert zf["source"] == "zero_filled"
    assert not any(k.endswith("_mean") for k in zf)
    assert aggregate([]) == []


def _parse(text):
    """{nACS: (column headers, {source: [cell text per column]})} of format_grid's output."""
    blocks = {}
    for block in text.strip().split("\n\n"):
        title, header, *lines = block.splitlines()
        n = int(re.search(r"nACS = (\d+)$", title).group(1))
        columns = re.findall(r"R=\d+ \([\d.]+x\)", header)
        assert header.split()[0] == "source"
        cells = {}
        for line in lines:
            assert len(line) == len(header), f"{line!r} is not aligned with {header!r}"
            source, rest = line[:14].strip(), line[14:]
            cells[source] = [rest[i : i + 18].strip() for i in range(0, len(rest), 18)]
            assert len(cells[source]) == len(columns)
        blocks[n] = (columns, cells)
    return blocks


def test_format_grid_puts_each_number_in_its_row_and_column():
    text = format_grid(aggregate(ROWS), "ssim")
    assert text.startswith("test SSIM (mean ± std over seeds), nACS = 4\n")
    blocks = _parse(text)
    assert list(blocks) == [4, 8]

    columns, cells = blocks[8]
    assert columns == ["R=2 (1.8x)", "R=4 (3.2x)"]
    assert list(cells) == ["gt", "zero", "zero_filled"]  # zero_filled last
    assert cells["gt"] == ["0.9500 ± 0.000", "0.8500 ± 0.071"]
    assert cells["zero"] == ["-", "0.6500 ± 0.071"]  # zero has no R=2 trial
    assert cells["zero_filled"] == ["0.7000 ± 0.000", "0.5000 ± 0.000"]

    columns, cells = blocks[4]
    assert columns == ["R=4 (3.6x)"]
    assert cells == {"gt": ["0.8500 ± 0.000"], "zero_filled": ["0.4500 ± 0.000"]}


def test_format_grid_of_another_metric_and_zero_filled_sorted_last():
    rows = [
        _row("zz", 4, 8, 0, 0.6, 27.0, 0.5, 20.0, 3.2),  # sorts after "zero_filled" by name
        _row("a_source", 4, 8, 0, 0.7, 29.0, 0.5, 20.0, 3.2),
    ]
    blocks = _parse(format_grid(aggregate(rows), "psnr"))
    columns, cells = blocks[8]
    assert list(cells) == ["a_source", "zz", "zero_filled"]
    assert cells["a_source"] == ["29.0000 ± 0.000"]
    assert cells["zero_filled"] == ["20.0000 ± 0.000"]
    assert format_grid(aggregate(rows), "psnr").startswith("test PSNR")


def test_format_grid_shows_a_dash_for_a_metric_a_cell_lacks():
    rows = [dict(ROWS[0]), dict(ROWS[4])]
    del rows[1]["test_psnr"]
    blocks = _parse(format_grid(aggregate(rows), "psnr"))
    _, cells = blocks[8]
    assert cells["gt"] == ["-", "30.0000 ± 0.000"]


def test_figures_are_named_per_metric_and_per_nacs():
    import matplotlib.pyplot as plt

    out = figures(aggregate(ROWS))
    try:
        assert set(out) == {
            "figures/ssim_vs_R.png",
            "figures/psnr_vs_R.png",
            "figures/nrmse_vs_R.png",
            "figures/ssim_heatmap_acs4.png",
            "figures/ssim_heatmap_acs8.png",
        }
        # One panel per nACS in the line plots; one line per source, zero-filled included.
        ssim = out["figures/ssim_vs_R.png"]
        panels = [ax for ax in ssim.axes if ax.get_title().startswith("nACS")]
        assert [ax.get_title() for ax in panels] == ["nACS = 4", "nACS = 8"]
        labels = panels[1].get_legend_handles_labels()[1]
        assert labels == ["gt", "zero", "zero_filled"]
        heatmap = out["figures/ssim_heatmap_acs8.png"].axes[0]
        assert [t.get_text() for t in heatmap.get_yticklabels()] == ["gt", "zero"]
        assert sorted(t.get_text() for t in heatmap.texts) == ["0.650", "0.850", "0.950", "nan"]
    finally:
        for fig in out.values():
            plt.close(fig)


def test_grid_cells_follow_the_mask_kind():
    from phaselab.config import load_config
    from phaselab.orchestration.grid import grid_cells

    knee = grid_cells(load_config("knee"))  # the preset runs R=2 with 31 centre lines only
    at_r2 = sorted({c["num_acs"] for c in knee if c["acceleration"] == 2})
    assert at_r2 == [31] and sorted({c["num_acs"] for c in knee if c["acceleration"] == 6}) == [16, 26, 31]
    assert len(knee) == 6 * (1 + 3 * 3) * 3  # 6 sources x (R=2: nACS 31; R=3,4,6: three nACS) x 3 seeds
    fractions = ["grid.mask=random", "grid.accelerations=[4, 8]", "grid.center_fractions={4: 0.08, 8: 0.04}"]
    fractions.append("grid.num_acs_at={}")  # an empty mapping clears the preset's
    cells = grid_cells(load_config("knee", [*fractions, "grid.sources=[gt]", "grid.seeds=[0]"]))
    assert cells == [
        {"source": "gt", "acceleration": 4, "num_acs": 20, "center_fraction": 0.08, "seed": 0},
        {"source": "gt", "acceleration": 8, "num_acs": 10, "center_fraction": 0.04, "seed": 0},
    ]
