# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Panoptic PNG decoding: every backend gives Pillow's pixels; bad files
stop with a message naming them."""
import io
import os
import shutil
import struct
import zlib

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
    if request.param != 'opencv':
        pytest.importorskip('pyspng')
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
    # with pyspng (a declared dependency) the ctypes binding must work
    pytest.importorskip('pyspng')
    _png.png_backend()
    assert _png._backend == 'libspng (ctypes, GIL released)'
    assert _png.png_backend().endswith('libspng (ctypes, GIL released)')


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


@pytest.mark.parametrize('use_extension', [True, False])
@pytest.mark.parametrize('blocky', [True, False])
def test_count_pairs_by_image_equals_per_image_counts(rng, blocky,
                                                     use_extension,
                                                     monkeypatch):
    if use_extension:
        _fast_module()
    else:
        monkeypatch.setattr(_png, '_fast', False)
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
    for dtype in (np.int64, np.uint32):
        with pytest.raises(ValueError, match='2\\*\\*24'):
            count_pairs_by_image(np.array([0, 2**24], dtype),
                                 np.array([0, 0], dtype), [0])


# ---------------------------------------------------------------------------
# the _fastpng C extension (built by `pip install -e .`)


def _fast_module():
    fast = _png._get_fast()
    if not fast:
        if shutil.which('cc') and os.path.exists('/usr/include/zlib.h'):
            pytest.fail('a C compiler and zlib.h are present but '
                        'knet/evaluation/_fastpng is not built or fails its '
                        'self-test (pip install -e . builds it)')
        pytest.skip('_fastpng not built (no C compiler / zlib headers)')
    return fast


@pytest.fixture(params=['libdeflate', 'zlib'])
def fast(request):
    """The extension with either inflater; libdeflate is restored after."""
    module = _fast_module()
    found = _png._libdeflate_addresses()
    if request.param == 'libdeflate':
        if found is None:  # neither the deflate wheel nor libdeflate.so.0
            pytest.skip('libdeflate not available')
    else:
        module.set_libdeflate(0, 0, 0)
    yield module
    if found is not None:
        module.set_libdeflate(*found[0])


def test_fast_path_is_the_default():
    _fast_module()
    inflater = 'libdeflate' if _png._libdeflate_addresses() else 'zlib'
    assert _png.png_backend().startswith(f'knet _fastpng + {inflater}')


def _ids(pixels: np.ndarray) -> np.ndarray:
    return ids_of(pixels[..., :3]).astype(np.uint32)


@pytest.mark.parametrize('filters', [[0], [1], [2], [3], [4], [4, 3, 2, 1, 0]])
@pytest.mark.parametrize('channels', [3, 4])
def test_fast_decodes_every_filter(fast, rng, filters, channels):
    for h, w in ((1, 1), (5, 7), (13, 6), (4, 9)):
        px = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        px[h // 2:, :w // 2] = px[0, 0]  # flat parts (Paeth's b == c case)
        for idat_size in (None, 7):
            data = _png.encode_png(px, filters, idat_size)
            out = np.full((h, w), 7, np.uint32)
            assert fast.decode_ids(data, out) == 0
            np.testing.assert_array_equal(out, _ids(px))
            # the test encoder itself agrees with Pillow
            np.testing.assert_array_equal(
                np.asarray(Image.open(io.BytesIO(data))), px)


@pytest.mark.parametrize('mode', ['RGB', 'RGBA', 'P'])
def test_fast_decodes_pillow_files(fast, rng, mode):
    rgb = rng.integers(0, 256, (61, 70, 3), dtype=np.uint8)
    rgb[20:40] = rgb[20, 3]
    rgb[:, 30:50] = rgb[0, 30]
    img = Image.fromarray(rgb)
    if mode == 'RGBA':
        img = img.convert('RGBA')
    elif mode == 'P':
        img = img.convert('P')
    data = png_bytes(img)
    out = np.empty((61, 70), np.uint32)
    assert fast.decode_ids(data, out) == 0
    np.testing.assert_array_equal(
        out, _ids(np.asarray(img.convert('RGB'))))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = 8, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], 'big')
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def _assemble(chunks) -> bytes:
    return _png._PNG_MAGIC + b''.join(
        _png._png_chunk(kind, body) for kind, body in chunks)


def test_fast_rejects_and_fallback_explains(fast, rng):
    """Damaged or unusual files: the extension reports a status, and the
    public decoder raises the general decoder's error naming the file."""
    px = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    good = _png.encode_png(px, [1, 4])
    out = np.empty((6, 5), np.uint32)
    chunks = _chunks(good)
    raw = zlib.decompress(chunks[1][1])

    def with_stream(stream: bytes) -> bytes:
        return _assemble([chunks[0], (b'IDAT', stream), (b'IEND', b'')])

    bad_crc = bytearray(good)
    bad_crc[45] ^= 1  # inside IDAT
    cases = {
        'crc': (bytes(bad_crc), 3),
        'short stream': (with_stream(zlib.compress(raw[:-16])), 4),
        'long stream': (with_stream(zlib.compress(raw + raw[:16])), 4),
        'garbage stream': (with_stream(b'\x78\x9c' + bytes(40)), 4),
        'bad filter': (with_stream(zlib.compress(b'\x05' + raw[1:])), 5),
        'no IEND': (good[:-12], 1),
    }
    for name, (data, status) in cases.items():
        assert fast.decode_ids(data, out) == status, name
        if name == 'long stream':  # Pillow and libspng ignore the surplus
            np.testing.assert_array_equal(
                np.asarray(Image.open(io.BytesIO(data))), px)
            np.testing.assert_array_equal(
                _png.decode_rgb_ids(data, 'broken.png'), _ids(px))
            continue
        with pytest.raises(ValueError, match='broken.png'):
            _png.decode_rgb_ids(data, 'broken.png')
    # a buffer of the wrong size is refused before decoding
    assert fast.decode_ids(good, np.empty(29, np.uint32)) == 7


def test_fast_palette_and_unsupported_layouts(fast):
    # palette index beyond the palette: refused (status 6)
    ihdr = struct.pack('>IIBBBBB', 4, 2, 8, 3, 0, 0, 0)
    plte = bytes([10, 20, 30, 40, 50, 60])
    rows = b'\x00' + bytes([0, 1, 1, 0]) + b'\x00' + bytes([1, 0, 0, 1])
    ok = _assemble([(b'IHDR', ihdr), (b'PLTE', plte),
                    (b'IDAT', zlib.compress(rows)), (b'IEND', b'')])
    out = np.empty((2, 4), np.uint32)
    assert fast.decode_ids(ok, out) == 0
    c0, c1 = 10 | 20 << 8 | 30 << 16, 40 | 50 << 8 | 60 << 16
    np.testing.assert_array_equal(out, [[c0, c1, c1, c0], [c1, c0, c0, c1]])
    rows_bad = rows[:-1] + bytes([2])
    bad = _assemble([(b'IHDR', ihdr), (b'PLTE', plte),
                     (b'IDAT', zlib.compress(rows_bad)), (b'IEND', b'')])
    assert fast.decode_ids(bad, out) == 6
    # palette after the image data, two palettes, an unknown critical
    # chunk: left to the general decoders (status 2)
    idat = (b'IDAT', zlib.compress(rows))
    for layout in ([(b'IHDR', ihdr), idat, (b'PLTE', plte)],
                   [(b'IHDR', ihdr), (b'PLTE', plte), (b'PLTE', plte), idat],
                   [(b'IHDR', ihdr), (b'PLTE', plte), (b'ABCD', b''), idat]):
        data = _assemble(layout + [(b'IEND', b'')])
        assert fast.decode_ids(data, out) == 2
    # ancillary chunks are skipped
    data = _assemble([(b'IHDR', ihdr), (b'PLTE', plte), (b'tEXt', b'a\0b'),
                      idat, (b'IEND', b'')])
    assert fast.decode_ids(data, out) == 0
    # interlaced / 16-bit: left to the general decoders (status 2)
    for depth, interlace in ((8, 1), (16, 0)):
        head = struct.pack('>IIBBBBB', 4, 2, depth, 2, 0, 0, interlace)
        data = _assemble([(b'IHDR', head), (b'IDAT', zlib.compress(rows)),
                          (b'IEND', b'')])
        assert fast.decode_ids(data, out) == 2


def test_decode_many_redoes_what_the_extension_refuses(fast, rng):
    """Files the extension refuses are redone by the general decoder in
    place; a damaged one stops with its name."""
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
              for h, w in ((4, 6), (5, 3), (2, 7))]
    datas = [_png.encode_png(im, [4, 1]) for im in images]
    chunks = _chunks(datas[1])
    raw = zlib.decompress(chunks[1][1])
    # surplus compressed data: refused by the extension, fine for libspng
    datas[1] = _assemble([chunks[0], (b'IDAT', zlib.compress(raw + raw[:5])),
                          (b'IEND', b'')])
    assert fast.decode_ids(datas[1], np.empty(15, np.uint32)) == 4
    sizes = [im.shape[0] * im.shape[1] for im in images]
    out = np.zeros(sum(sizes), np.uint32)
    names = ['a.png', 'b.png', 'c.png']
    _png.decode_many_ids_into(datas, sizes, names, out)
    np.testing.assert_array_equal(
        out, np.concatenate([_ids(im).ravel() for im in images]))
    damaged = bytearray(datas[2])
    damaged[45] ^= 1
    with pytest.raises(ValueError, match='c.png'):
        _png.decode_many_ids_into(datas[:2] + [bytes(damaged)], sizes, names,
                                  out)
    with pytest.raises(ValueError, match='add up'):
        _png.decode_many_ids_into(datas, sizes, names, out[1:])
    _png.decode_many_ids_into([], [], [], out[:0])


def test_decode_many_without_the_extension(monkeypatch, rng):
    images = [rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
              for _ in range(3)]
    monkeypatch.setattr(_png, '_fast', False)
    out = np.zeros(36, np.uint32)
    _png.decode_many_ids_into([_png.encode_png(im, [2]) for im in images],
                              [12] * 3, ['x.png'] * 3, out)
    np.testing.assert_array_equal(
        out, np.concatenate([_ids(im).ravel() for im in images]))
    assert not _png.png_backend().startswith('knet _fastpng')


def test_extension_counting_equals_numpy_on_large_tables(rng, monkeypatch):
    """Thousands of distinct pairs (the extension's hash table grows)."""
    fast = _fast_module()
    a = rng.integers(0, 2**24, 30000).astype(np.uint32)
    b = rng.integers(0, 50, 30000).astype(np.uint32)
    a[1000:9000] = 5  # long runs too
    starts = np.array([0, 7, 7, 12000, 29999])
    got = count_pairs_by_image(a, b, starts)
    monkeypatch.setattr(_png, '_fast', False)
    want = count_pairs_by_image(a, b, starts)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    assert got[0].size > 20000
    with pytest.raises(ValueError, match='starts'):
        fast.count_pairs(a, b, np.array([1, 5]))
    with pytest.raises(ValueError, match='starts'):
        fast.count_pairs(a, b, np.array([0, 9, 5]))
