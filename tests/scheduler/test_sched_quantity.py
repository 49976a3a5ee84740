"""tfclient.quantity: the sizes and compute figures users type, as Kubernetes resource quantities (case-sensitive
suffixes; a bare VRAM number is MiB)."""
import pytest

from tfclient.errors import InvalidQuantity, InvalidRequest
from tfclient.quantity import format_vram, parse_tflops, parse_vram_mib


@pytest.mark.parametrize("text,mib", [("512Mi", 512), ("2Gi", 2048), ("1.5Gi", 1536), ("1024", 1024), (1024, 1024),
                                      ("1Ti", 1024 * 1024), ("2G", 1908), ("80G", 76294), ("1048576k", 1000),
                                      ("0", 0), ("100Ki", 1), (".5Gi", 512), ("1.", 1), ("+4Gi", 4096),
                                      ("1e3", 1000), ("2E-3", 1), ("1Pi", 1 << 30)])
def test_vram_sizes_parse_to_mib(text, mib):
    assert parse_vram_mib(text) == mib


@pytest.mark.parametrize("text,tflops", [("10", 10.0), (2.5, 2.5), ("500m", 0.5), ("2k", 2000.0), ("1e1", 10.0),
                                         ("989.4", 989.4), ("1M", 1e6)])
def test_tflops_parse(text, tflops):
    assert parse_tflops(text) == pytest.approx(tflops)


@pytest.mark.parametrize("bad, says", [
    ("2Gb", "unknown unit 'Gb' (suffixes are case-sensitive)"), ("2gi", "unknown unit 'gi'"),
    ("1.5GiB", "unknown unit 'GiB'"), ("2K", "unknown unit 'K'"), ("2g", "unknown unit 'g'"),
    ("80GB", "unknown unit 'GB'"), ("1048576B", "unknown unit 'B'"), ("2Gx", "unknown unit 'Gx'"),
    ("500m", "m is milli, a thousandth of a byte, not a size"), (" 4 Gi ", "is not a size"),
    ("lots", "is not a size"), ("", "is not a size"), ("nan", "is not a size"),
    ("1.2.3Gi", "is not a size"), (True, "is not a size"), (None, "is not a size"),
    ("-1", "out of range"), ("5Pi", "out of range"), ("1E", "out of range")])
def test_bad_vram_says_what_is_accepted(bad, says):
    with pytest.raises(InvalidQuantity, match="Ki Mi Gi Ti .* k M G T|512Mi, 2Gi") as e:
        parse_vram_mib(bad)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("bad", ["10Tflops", "500GFLOPS", "fast", "-3", "1P", "500G", "2K", "10 T", float("inf")])
def test_bad_tflops_says_what_is_accepted(bad):
    with pytest.raises(InvalidRequest, match="TFLOPS .*(case-sensitive suffix|out of range)"):
        parse_tflops(bad)


def test_format_vram_round_trips():
    for mib in (300, 1536, 81920):
        assert parse_vram_mib(format_vram(mib)) == mib
