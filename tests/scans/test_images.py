import io

import pytest
from PIL import Image, ImageStat

from portal.scans.errors import EvidenceRefused
from portal.scans.images import normalise
from portal.scans.limits import ScanLimits
from portal.scans.sniff import FileKind
from tests.scans import corpus


def opened(encoded) -> Image.Image:
    image = Image.open(io.BytesIO(encoded.data))
    image.load()
    return image


@pytest.fixture(scope="module")
def small_page(legacy_page):
    return legacy_page.resize((700, 450))


def test_a_phone_photo_is_decoded_at_reduced_scale_and_re_encoded(phone_jpeg):
    picture = normalise(phone_jpeg)
    assert picture.original_size == (4000, 3000)
    assert picture.image.size == (2000, 1500)
    assert picture.scale == 0.5
    assert picture.display.media_type == "image/jpeg"
    assert opened(picture.display).size == (2000, 1500)
    assert max(opened(picture.thumbnail).size) == 320
    assert picture.full_resolution().size == (4000, 3000)


def test_the_display_never_exceeds_its_long_side(legacy_page):
    picture = normalise(corpus.encode(legacy_page, "PNG"), limits=ScanLimits(display_max_side=1000))
    assert picture.display.media_type == "image/png"
    assert opened(picture.display).size == (1000, 643)


def test_gps_and_every_other_exif_field_are_stripped(small_page):
    data = corpus.encode(small_page, "JPEG", exif=corpus.gps_exif())
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    picture = normalise(data)
    for encoded in (picture.display, picture.thumbnail):
        image = opened(encoded)
        assert not image.getexif()
        assert not image.info.get("exif")
        assert b"Exif" not in encoded.data
        assert b"PhoneMaker" not in encoded.data


@pytest.mark.parametrize(
    ("orientation", "turn"),
    [
        (6, Image.Transpose.ROTATE_90),
        (8, Image.Transpose.ROTATE_270),
        (3, Image.Transpose.ROTATE_180),
    ],
)
def test_exif_orientation_is_applied_then_dropped(small_page, orientation, turn):
    stored = small_page.transpose(turn)
    picture = normalise(corpus.encode(stored, "JPEG", exif=corpus.gps_exif(orientation)))
    assert picture.image.size == small_page.size
    assert picture.original_size == small_page.size
    # Upright: the dark QR code is back in the top-left corner.
    corner = picture.image.convert("L").crop((25, 25, 95, 95))
    assert ImageStat.Stat(corner).mean[0] < 200
    assert opened(picture.display).getexif().get(0x0112) is None


def test_png_text_chunks_and_icc_profiles_are_not_carried_over(small_page):
    data = corpus.png_with_text_chunk(small_page, 5_000_000, compressed=False)
    picture = normalise(data)
    assert len(picture.display.data) < 1_000_000
    assert not opened(picture.display).info.get("Comment")


def test_transparent_pictures_are_flattened_onto_white():
    transparent = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    picture = normalise(corpus.encode(transparent, "PNG"))
    assert picture.image.mode == "RGB"
    assert picture.image.getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_scans_become_eight_bit_gray():
    deep = Image.linear_gradient("L").resize((64, 64)).convert("I;16")
    picture = normalise(corpus.encode(deep, "PNG"))
    assert picture.image.mode == "L"
    assert picture.image.getextrema() == (0, 255)


@pytest.mark.parametrize("image_format", ["HEIF", "WEBP"])
def test_heic_and_webp_photos_become_jpeg(small_page, image_format):
    picture = normalise(corpus.encode(small_page, image_format))
    assert picture.kind in (FileKind.HEIC, FileKind.WEBP)
    assert picture.display.media_type == "image/jpeg"
    assert picture.image.size == small_page.size


def test_a_truncated_jpeg_is_refused_as_corrupt(phone_jpeg):
    with pytest.raises(EvidenceRefused) as refused:
        normalise(phone_jpeg[: len(phone_jpeg) // 3])
    assert refused.value.code == "corrupt"


def test_a_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(EvidenceRefused) as refused:
        normalise(corpus.png_bomb())
    assert refused.value.code == "too_many_pixels"
    assert "1600000000" in refused.value.message("en")


def test_the_pixel_limit_is_a_setting(small_page):
    with pytest.raises(EvidenceRefused) as refused:
        normalise(corpus.encode(small_page, "PNG"), limits=ScanLimits(max_pixels=100_000))
    assert refused.value.code == "too_many_pixels"


def test_pillow_limit_is_set_explicitly():
    assert ScanLimits().max_pixels == Image.MAX_IMAGE_PIXELS


def test_an_inflating_text_chunk_is_handled_safely(small_page):
    try:
        picture = normalise(corpus.png_with_text_chunk(small_page, 50_000_000, compressed=True))
    except EvidenceRefused as refused:
        assert refused.code == "corrupt"
    else:
        assert b"AAAA" not in picture.display.data


def test_non_images_are_not_normalised():
    with pytest.raises(EvidenceRefused) as refused:
        normalise(b"%PDF-1.7\n")
    assert refused.value.code == "unsupported_type"
    with pytest.raises(EvidenceRefused):
        normalise(b"")
