"""tfclient.quantity: the sizes and compute figures users type."""
import pytest

from tfclient.errors import InvalidQuantity, InvalidRequest
from tfclient.quantity import format_vram, parse_tflops, parse_vram_mib


@pytest.mark.parametrize("text,mib", [("512Mi", 512), ("2Gi", 2048), ("1.5GiB", 1536), ("1024", 1024), (1024, 1024),
                                      ("1Ti", 1024 * 1024), ("2G", 1908), ("80GB", 76294), ("1048576B", 1),
                                      ("0", 0), (" 4 Gi ", 4096), ("100KiB", 1)])
def test_vram_sizes_parse_to_mib(text, mib):
    assert parse_vram_mib(text) == mib


@pytest.mark.parametrize("text,tflops", [("10", 10.0), (2.5, 2.5), ("500G", 0.5), ("500GFLOPS", 0.5), ("500m", 0.5),
                                         ("1e1T", 10.0), ("989.4TFLOPS", 989.4)])
def test_tflops_parse(text, tflops):
    assert parse_tflops(text) == pytest.approx(tflops)


@pytest.mark.parametrize("bad", ["2Gx", "lots", "-1", "5Pi", "", "nan", True, None, "1.2.3Gi"])
def test_bad_vram_says_what_is_accepted(bad):
    with pytest.raises(InvalidQuantity, match="512Mi"):
        parse_vram_mib(bad)


@pytest.mark.parametrize("bad", ["10M", "fast", "-3", "1P", float("inf")])
def test_bad_tflops_says_what_is_accepted(bad):
    with pytest.raises(InvalidRequest, match="TFLOPS"):
        parse_tflops(bad)


def test_format_vram_round_trips():
    for mib in (300, 1536, 81920):
        assert parse_vram_mib(format_vram(mib)) == mib
