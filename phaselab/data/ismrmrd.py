"""A minimal ISMRMRD XML header: the fields the fastMRI loader reads (matrix sizes, encoding limits)."""

import xml.etree.ElementTree as ET

NAMESPACE = "http://www.ismrm.org/ISMRMRD"
_NS = {"ismrmrd": NAMESPACE}

_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="{ns}">
  <experimentalConditions>
    <H1resonanceFrequency_Hz>{larmor_hz}</H1resonanceFrequency_Hz>
  </experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{enc_x}</x><y>{enc_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{enc_x}</x><y>{enc_y}</y><z>1</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rec_x}</x><y>{rec_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{rec_x}</x><y>{rec_y}</y><z>1</z></fieldOfView_mm>
    </reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{enc1_max}</maximum><center>{enc1_center}</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>0</maximum><center>0</center></slice>
    </encodingLimits>
    <trajectory>cartesian</trajectory>
  </encoding>
</ismrmrdHeader>
"""


def minimal_header(
    encoded: tuple[int, int],
    recon: tuple[int, int],
    enc1_center: int | None = None,
    enc1_max: int | None = None,
    larmor_hz: int = 127_728_000,
) -> str:
    """ISMRMRD header for k-space of shape ``encoded = (H, W)`` reconstructed at ``recon = (h, w)``.

    As in fastMRI files, x is the readout (rows, H) and y the phase encode (columns, W).
    ``kspace_encoding_step_1`` defaults to a fully acquired line range: centre ``W // 2``,
    maximum ``W - 1``, so the fastMRI loader computes zero padding. Field of view is written as
    1 mm pixels: the schema requires it, nothing in phaselab reads it.
    """
    enc_x, enc_y = (int(v) for v in encoded)
    rec_x, rec_y = (int(v) for v in recon)
    if min(enc_x, enc_y, rec_x, rec_y) < 1:
        raise ValueError(f"matrix sizes must be positive, got encoded={encoded} recon={recon}")
    enc1_center = enc_y // 2 if enc1_center is None else int(enc1_center)
    enc1_max = enc_y - 1 if enc1_max is None else int(enc1_max)
    return _TEMPLATE.format(
        ns=NAMESPACE,
        larmor_hz=int(larmor_hz),
        enc_x=enc_x,
        enc_y=enc_y,
        rec_x=rec_x,
        rec_y=rec_y,
        enc1_center=enc1_center,
        enc1_max=enc1_max,
    )


def _find_int(root: ET.Element, path: list[str]) -> int:
    query = "." + "".join(f"//ismrmrd:{name}" for name in path)
    element = root.find(query, _NS)
    if element is None or element.text is None:
        raise ValueError(f"ISMRMRD header: element {'/'.join(path)} missing")
    return int(element.text.strip())


def parse_header(xml: str | bytes) -> dict:
    """The fields fastMRI uses: ``encoded``/``recon`` (x, y, z), ``enc1_center``, ``enc1_max``.

    Raises ``ValueError`` when the XML does not parse or a field is missing.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ValueError(f"ISMRMRD header is not valid XML ({err})") from err
    enc = ["encoding", "encodedSpace", "matrixSize"]
    rec = ["encoding", "reconSpace", "matrixSize"]
    lims = ["encoding", "encodingLimits", "kspace_encoding_step_1"]
    return {
        "encoded": tuple(_find_int(root, enc + [axis]) for axis in "xyz"),
        "recon": tuple(_find_int(root, rec + [axis]) for axis in "xyz"),
        "enc1_center": _find_int(root, lims + ["center"]),
        "enc1_max": _find_int(root, lims + ["maximum"]),
    }
