# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Panoptic PNG decoding: every backend gives Pillow's pixels; bad files
stop with a message naming them."""
import io

import numpy as np
import pytest
from PIL import Image

from knet.evaluation import _png
from knet.evaluation._utils import count_pairs, count_pairs_by_image


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, 'PNG')
    return buf.getvalue()


def ids_of(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


@pytest.fixture(params=['libspng', 'pyspng', 'opencv'])
def backend(request, monkeypatch):
    """Force one decoder; the module-level choice is restored afterwards."""
    if request.param == 'pyspng':
        monkeypatch.setattr(_png, '_SpngLib', _raise_oserror)
    elif request.param == 'opencv':
        monkeypatch.setattr(_png, '_find_pyspng_library', lambda: None)
    decoder, name = _png._make_decoder()
    assert name.startswith(request.param)
    monkeypatch.setattr(_png, '_decoder', decoder)
    monkeypatch.setattr(_png, '_backend', name)
    return name


def _raise_oserror(path):
    raise OSError('no libspng symbols')


def test_default_backend_is_libspng_without_gil():
    # pyspng is a declared dependency; the ctypes binding must work with it
    assert _png.png_backend() == 'libspng (ctypes, GIL released)'


@pytest.mark.parametrize('mode', ['RGB', 'RGBA', 'P'])
def test_decoders_agree_with_pillow(backend, rng, mode):
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[10:20] = rgb[10, 5]  # flat areas exercise the other PNG filters
    if mode == 'RGBA':
        alpha = rng.integers(0, 256, (37, 53, 1), dtype=np.uint8)
        img = Image.fromarray(np.concatenate([rgb, alpha], -1), 'RGBA')
    elif mode == 'P':
        img = Image.fromarray(rgb).convert('P')
        rgb = np.asarray(img.convert('RGB'))
    else:
        img = Image.fromarray(rgb)
    ids = _png.decode_rgb_ids(png_bytes(img), 'x.png')
    assert ids.dtype == np.uint32 and ids.shape == (37, 53)
    # alpha is ignored, as panopticapi's rgb2id ignores it
    np.testing.assert_array_equal(ids, ids_of(rgb))


def test_decode_into_back_to_back_buffers(backend, rng):
    """Several images decoded into one buffer give each image's ids."""
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
              for h, w in ((5, 7), (1, 1), (9, 4))]
    sizes = [im.shape[0] * im.shape[1] for im in images]
    buf = np.empty(3 * sum(sizes) + 1, np.uint8)
    offset = 0
    for im, size in zip(images, sizes):
        data = png_bytes(Image.fromarray(im))
        assert _png.png_shape(data) == im.shape[:2]
        _png.decode_rgb_into(data, buf[3 * offset:3 * (offset + size)])
        offset += size
    ids = _png.rgb_to_ids(buf, sum(sizes))
    expected = np.concatenate([ids_of(im).ravel() for im in images])
    np.testing.assert_array_equal(ids, expected)


def test_bad_files_name_the_file(backend, tmp_path, rng):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        _png.read_rgb_ids(str(tmp_path / 'missing.png'))
    (tmp_path / 'a.txt').write_text('hello, not a png at all, no no no')
    with pytest.raises(ValueError, match='Not a PNG.*a.txt'):
        _png.read_rgb_ids(str(tmp_path / 'a.txt'))
    gray16 = Image.fromarray(rng.integers(0, 2**16, (4, 4)).astype(np.uint16))
    gray16.save(tmp_path / 'g16.png')
    with pytest.raises(ValueError, match='8-bit RGB.*g16.png'):
        _png.read_rgb_ids(str(tmp_path / 'g16.png'))
    Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(
        tmp_path / 'gray.png')
    with pytest.raises(ValueError, match='colour type 0.*gray.png'):
        _png.read_rgb_ids(str(tmp_path / 'gray.png'))
    data = png_bytes(
        Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)))
    (tmp_path / 'cut.png').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='cut.png'):
        _png.read_rgb_ids(str(tmp_path / 'cut.png'))


def test_corrupt_data_is_detected(rng):
    data = bytearray(
        png_bytes(
            Image.fromarray(rng.integers(0, 256, (30, 30, 3),
                                         dtype=np.uint8))))
    data[60] ^= 0xFF  # inside the IDAT chunk: its CRC no longer matches
    with pytest.raises(ValueError, match='bad.png'):
        _png.decode_rgb_ids(bytes(data), 'bad.png')


def test_decoding_in_threads_matches_serial(rng):
    from concurrent.futures import ThreadPoolExecutor
    blobs = [
        png_bytes(
            Image.fromarray(rng.integers(0, 256, (64, 80, 3),
                                         dtype=np.uint8))) for _ in range(16)
    ]
    serial = [_png.decode_rgb_ids(b) for b in blobs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(_png.decode_rgb_ids, blobs))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('blocky', [True, False])
def test_count_pairs_by_image_equals_per_image_counts(rng, blocky):
    maps = []
    for h, w in ((6, 9), (1, 5), (8, 8), (3, 1)):
        if blocky:  # long runs that would cross into the next image
            a = np.full((h, w), 7)
            b = np.full((h, w), 3)
            a[h // 2:] = 2**24 - 1
        else:
            a = rng.integers(0, 2**24, (h, w))
            b = rng.integers(0, 3, (h, w))
        maps.append((a.astype(np.uint32), b.astype(np.uint32)))
    sizes = [a.size for a, _ in maps]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    img, ga, gb, cnt = count_pairs_by_image(
        np.concatenate([a.ravel() for a, _ in maps]),
        np.concatenate([b.ravel() for _, b in maps]), starts)
    for k, (a, b) in enumerate(maps):
        ref = count_pairs(a, b)
        sel = img == k
        for got, want in zip((ga[sel], gb[sel], cnt[sel]), ref):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match='2\\*\\*24'):
        count_pairs_by_image(np.array([2**24]), np.array([0]), [0])
