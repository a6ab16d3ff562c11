import pytest

from phaselab.data.ismrmrd import minimal_header, parse_header


def test_header_round_trip_defaults_to_full_phase_encode_range():
    fields = parse_header(minimal_header(encoded=(640, 368), recon=(320, 320)))
    assert fields == {"encoded": (640, 368, 1), "recon": (320, 320, 1), "enc1_center": 184, "enc1_max": 367}


def test_header_explicit_limits_and_bytes_input():
    xml = minimal_header(encoded=(64, 48), recon=(32, 32), enc1_center=20, enc1_max=40)
    fields = parse_header(xml.encode("utf-8"))
    assert (fields["enc1_center"], fields["enc1_max"]) == (20, 40)


def test_fastmri_metadata_gives_zero_padding():
    # fastmri.data.mri_data._retrieve_metadata: padding_left = enc_y // 2 - center; right = left + max + 1
    fields = parse_header(minimal_header(encoded=(33, 37), recon=(33, 37)))
    padding_left = fields["encoded"][1] // 2 - fields["enc1_center"]
    assert padding_left == 0
    assert padding_left + fields["enc1_max"] + 1 == 37


def test_parse_header_errors():
    with pytest.raises(ValueError, match="not valid XML"):
        parse_header("<ismrmrdHeader")
    with pytest.raises(ValueError, match="encodedSpace"):
        parse_header('<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding/></ismrmrdHeader>')
    with pytest.raises(ValueError, match="positive"):
        minimal_header(encoded=(0, 4), recon=(4, 4))
