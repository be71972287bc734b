# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Fast decoding of COCO-panoptic PNGs into segment-id maps.

PNG decoding is most of the cost of panoptic evaluation (panopticapi spends
about 60% of its time in Pillow). libspng decodes about 1.5x faster than
libpng (OpenCV) and 2x faster than Pillow, but ``pyspng.load`` holds the GIL,
so decoding threads would run one at a time. We therefore call the libspng C
API that the ``pyspng`` wheel exports through ``ctypes``, which releases the
GIL for the duration of the call; threads then decode in parallel.

The binding is checked once against OpenCV on a generated PNG. If ``pyspng``
is missing, its library does not export the API, or the check fails, the
decoder falls back to ``pyspng.load`` and then to OpenCV; the results are the
same, only the speed differs (:func:`png_backend` says which one is used).

Faster still is the project's optional C extension ``_fastpng`` (built by
``pip install -e .`` when a C compiler and zlib headers are present): it
inflates the whole image stream in one call with libdeflate (from the
``deflate`` wheel, else the system's ``libdeflate.so.0``, else zlib),
unfilters and packs the ids in one pass, without the GIL. It handles the
common case (8-bit RGB / RGBA / palette, not interlaced) strictly; any other
or damaged file goes to the decoders above, which decode it or raise the
error message. :func:`decode_ids_into` is the entry point that uses it.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import importlib
import importlib.machinery
import os
import struct
import threading
import zlib
from typing import Callable, Sequence

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - opencv ships with mmcv
    cv2 = None

__all__ = [
    'png_shape', 'decode_rgb_into', 'decode_ids_into',
    'decode_many_ids_into', 'rgb_to_ids',
    'decode_rgb_ids', 'read_png_bytes', 'read_rgb_ids', 'png_backend'
]

_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# libspng constants (spng.h, stable since libspng 0.7)
_SPNG_CTX_IGNORE_ADLER32 = 1  # chunk CRCs are still verified
_SPNG_FMT_RGB8 = 4
# PNG colour types we accept for panoptic maps: RGB, palette, RGBA
_RGB, _PALETTE, _RGBA = 2, 3, 6


class _SpngLib:
    """The libspng functions of the ``pyspng`` extension, via ctypes."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)  # CDLL: calls release the GIL
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        lib.spng_ctx_new.restype = vp
        lib.spng_ctx_new.argtypes = [ctypes.c_int]
        lib.spng_ctx_free.restype = None
        lib.spng_ctx_free.argtypes = [vp]
        lib.spng_set_png_buffer.argtypes = [vp, ctypes.c_char_p, sz]
        lib.spng_decoded_image_size.argtypes = [
            vp, ctypes.c_int, ctypes.POINTER(sz)
        ]
        lib.spng_decode_image.argtypes = [vp, vp, sz, ctypes.c_int,
                                          ctypes.c_int]
        lib.spng_strerror.restype = ctypes.c_char_p
        lib.spng_strerror.argtypes = [ctypes.c_int]
        self.lib = lib

    def decode_into(self, data: bytes, out: np.ndarray, where: str) -> None:
        """Decode ``data`` as packed RGB bytes into ``out`` (uint8, exactly
        ``3 * height * width`` contiguous bytes)."""
        lib = self.lib
        ctx = lib.spng_ctx_new(_SPNG_CTX_IGNORE_ADLER32)
        if not ctx:
            raise MemoryError('spng_ctx_new failed')
        try:
            self._check(lib.spng_set_png_buffer(ctx, data, len(data)), where)
            size = ctypes.c_size_t()
            self._check(
                lib.spng_decoded_image_size(ctx, _SPNG_FMT_RGB8,
                                            ctypes.byref(size)), where)
            if size.value != out.nbytes:
                raise ValueError(f'Cannot decode PNG {where}: header says '
                                 f'{size.value} bytes, expected {out.nbytes}')
            self._check(
                lib.spng_decode_image(ctx, out.ctypes.data, out.nbytes,
                                      _SPNG_FMT_RGB8, 0), where)
        finally:
            lib.spng_ctx_free(ctx)

    def _check(self, ret: int, where: str) -> None:
        if ret != 0:
            msg = self.lib.spng_strerror(ret)
            raise ValueError(f'Cannot decode PNG {where}: '
                             f'{msg.decode() if msg else ret}')


def _check_ihdr(bit_depth: int, color_type: int, where: str) -> None:
    if bit_depth != 8 or color_type not in (_RGB, _PALETTE, _RGBA):
        raise ValueError(
            f'Expected an 8-bit RGB panoptic PNG, got bit depth {bit_depth} '
            f'and colour type {color_type}: {where}')


def png_shape(data: bytes, where: str = '<bytes>') -> tuple[int, int]:
    """``(height, width)`` of an 8-bit RGB / RGBA / palette PNG.

    Raises:
        ValueError: Not a PNG, or another bit depth / colour type.
    """
    if len(data) < 33 or not data.startswith(_PNG_MAGIC) or \
            data[12:16] != b'IHDR':
        raise ValueError(f'Not a PNG file: {where}')
    width, height = struct.unpack('>II', data[16:24])
    _check_ihdr(data[24], data[25], where)
    return height, width


def verify_png_crcs(data: bytes, where: str = '<bytes>') -> None:
    """Check every chunk's CRC-32 (cheap: it covers the compressed bytes).

    libspng is run without the zlib Adler-32 check (about 20% faster) and
    stops reading once the pixels are decoded, so a damaged IDAT chunk would
    go unnoticed without this.
    """
    view = memoryview(data)
    pos, end = 8, len(data)
    while pos < end:
        if pos + 12 > end:
            raise ValueError(f'Cannot decode PNG {where}: truncated chunk')
        length = int.from_bytes(view[pos:pos + 4], 'big')
        stop = pos + 8 + length
        if stop + 4 > end:
            raise ValueError(f'Cannot decode PNG {where}: truncated chunk')
        if zlib.crc32(view[pos + 4:stop]) != int.from_bytes(
                view[stop:stop + 4], 'big'):
            raise ValueError(f'Cannot decode PNG {where}: chunk '
                             f'{bytes(view[pos + 4:pos + 8])!r} is damaged '
                             '(CRC mismatch)')
        if view[pos + 4:pos + 8] == b'IEND':
            return
        pos = stop + 4
    raise ValueError(f'Cannot decode PNG {where}: no IEND chunk (truncated)')


def rgb_to_ids(buf: np.ndarray, num_pixels: int) -> np.ndarray:
    """R + 256 G + 65536 B of packed RGB bytes, in one pass.

    ``buf`` (uint8, contiguous) must hold at least ``3 * num_pixels + 1``
    bytes: every 3-byte step is read as a little-endian uint32 (an unaligned
    view whose fourth byte belongs to the next pixel, or is the spare byte)
    and masked to 24 bits.
    """
    if buf.size < 3 * num_pixels + 1:
        raise ValueError('rgb_to_ids needs one spare byte after the pixels')
    view = np.ndarray((num_pixels, ), '<u4', buffer=buf, strides=(3, ))
    return view & np.uint32(0xFFFFFF)


def _find_pyspng_library() -> str | None:
    try:
        import pyspng
    except ImportError:
        return None
    folder = os.path.dirname(pyspng.__file__)
    found = sorted(glob.glob(os.path.join(folder, '_pyspng_c*.so')))
    return found[0] if found else None


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack('>I', len(body)) + kind + body +
            struct.pack('>I', zlib.crc32(kind + body)))


def _filter_rows(pixels: np.ndarray, filters: Sequence[int]) -> bytes:
    """PNG scanlines of an (H, W, C) uint8 image, row k filtered with
    ``filters[k % len(filters)]`` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth).

    Plain Python (slow): for self-tests and unit tests on tiny images.
    """
    h, w, bpp = pixels.shape
    rows = [bytes(r) for r in pixels.reshape(h, w * bpp)]
    out = bytearray()
    prev = bytes(w * bpp)
    for k, row in enumerate(rows):
        kind = filters[k % len(filters)]
        line = bytearray([kind])
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line.append((x - pred) % 256)
        out += line
        prev = row
    return bytes(out)


def encode_png(pixels: np.ndarray, filters: Sequence[int] = (0, ),
               idat_size: int | None = None) -> bytes:
    """A PNG of an (H, W, 3|4) uint8 image with the given row filters, the
    stream split into IDAT chunks of ``idat_size`` bytes (default: one)."""
    h, w, bpp = pixels.shape
    color = {3: _RGB, 4: _RGBA}[bpp]
    stream = zlib.compress(_filter_rows(pixels, list(filters)))
    size = idat_size or max(1, len(stream))
    idats = b''.join(
        _png_chunk(b'IDAT', stream[i:i + size])
        for i in range(0, len(stream), size))
    return (_PNG_MAGIC +
            _png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, color, 0,
                                            0, 0)) + idats +
            _png_chunk(b'IEND', b''))


@functools.lru_cache(maxsize=1)
def _selftest_png() -> tuple[bytes, np.ndarray]:
    """A small RGB PNG using all five filter types, and its pixels."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((23, 37, 3), np.uint8)
    rgb[..., 0] = np.arange(37, dtype=np.uint8)[None] * 7
    rgb[..., 1] = np.arange(23, dtype=np.uint8)[:, None] * 11
    rgb[5:15, 3:30] = rng.integers(0, 256, (10, 27, 3), dtype=np.uint8)
    return encode_png(rgb, [0, 1, 2, 3, 4], idat_size=200), rgb


_Decoder = Callable[[bytes, np.ndarray, str], None]
_lock = threading.Lock()
_decoder: _Decoder | None = None
_backend = ''


def _make_decoder() -> tuple[_Decoder, str]:
    path = _find_pyspng_library()
    if path is not None:
        try:
            spng = _SpngLib(path)
            png, expected = _selftest_png()
            out = np.empty(expected.size, np.uint8)
            spng.decode_into(png, out, 'self-test')
            if np.array_equal(out, expected.reshape(-1)):
                return spng.decode_into, 'libspng (ctypes, GIL released)'
        except (OSError, AttributeError, ValueError, RuntimeError):
            pass
        import pyspng

        def decode_pyspng(data: bytes, out: np.ndarray, where: str) -> None:
            try:
                rgb = pyspng.load(data, 'RGB')
            except Exception as err:
                raise ValueError(f'Cannot decode PNG {where}: {err}') from err
            out[:] = rgb.reshape(-1)

        return decode_pyspng, 'pyspng'
    if cv2 is None:  # pragma: no cover
        raise ImportError('PNG decoding needs pyspng or opencv-python')

    def decode_cv2(data: bytes, out: np.ndarray, where: str) -> None:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'Cannot decode PNG {where}')
        out[:] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).reshape(-1)

    return decode_cv2, 'opencv'


def _get_decoder() -> _Decoder:
    global _decoder, _backend
    if _decoder is None:
        with _lock:
            if _decoder is None:
                _decoder, _backend = _make_decoder()
    return _decoder


_fast: object = None  # the _fastpng module, False when unavailable
_fast_name = ''
_libdeflate = None  # keeps the library loaded


def _libdeflate_addresses() -> tuple[tuple[int, int, int], str] | None:
    """Addresses of libdeflate's decompressor functions and where from."""
    global _libdeflate
    paths = []
    try:
        import deflate  # the wheel links libdeflate in and exports it
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        paths += sorted(
            p for p in glob.glob(
                os.path.join(os.path.dirname(deflate.__file__), '_deflate*'))
            if p.endswith(suffixes))
    except ImportError:
        pass
    paths.append('libdeflate.so.0')  # e.g. Debian's libdeflate0
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            funcs = (lib.libdeflate_alloc_decompressor,
                     lib.libdeflate_free_decompressor,
                     lib.libdeflate_zlib_decompress)
        except (OSError, AttributeError):
            continue
        _libdeflate = lib
        return tuple(ctypes.cast(f, ctypes.c_void_p).value
                     for f in funcs), os.path.basename(path)
    return None


def _selftest_fast(module) -> bool:
    png, rgb = _selftest_png()
    out = np.empty(rgb.shape[:2], np.uint32)
    if module.decode_ids(png, out) != 0:
        return False
    rgb = rgb.astype(np.uint32)
    return bool(np.array_equal(
        out, rgb[..., 0] | rgb[..., 1] << 8 | rgb[..., 2] << 16))


def _make_fast() -> tuple[object, str]:
    try:
        module = importlib.import_module(f'{__package__}._fastpng')
    except ImportError:
        return False, ''
    found = _libdeflate_addresses()
    if found is not None:
        module.set_libdeflate(*found[0])
        if _selftest_fast(module):
            return module, f'knet _fastpng + libdeflate ({found[1]})'
        module.set_libdeflate(0, 0, 0)
    if _selftest_fast(module):
        return module, 'knet _fastpng + zlib'
    return False, ''


def _get_fast():
    global _fast, _fast_name
    if _fast is None:
        with _lock:
            if _fast is None:
                _fast_name, _fast = _make_fast()[::-1]
    return _fast


def prepare() -> None:
    """Load and self-test the decoders now (a few ms) instead of on the
    first decoded file, so that the first evaluation is not slower."""
    try:
        _get_decoder()
    except ImportError:  # pragma: no cover - raised again when decoding
        pass
    _get_fast()


def png_backend() -> str:
    """Name of the PNG decoder in use: the ``_fastpng`` extension (with its
    fallback) or libspng via ctypes, pyspng, OpenCV."""
    _get_decoder()
    if _get_fast():
        return f'{_fast_name}; fallback {_backend}'
    return _backend


def decode_rgb_into(data: bytes, out: np.ndarray, where: str = '<bytes>'
                    ) -> None:
    """Decode an 8-bit RGB / RGBA / palette PNG into packed RGB bytes.

    Args:
        data: The PNG file contents (check it with :func:`png_shape`).
        out: Contiguous uint8 array of exactly ``3 * height * width``
            elements; alpha, if any, is dropped (as panopticapi's
            ``rgb2id`` ignores it).
        where: Names the file in error messages.

    Raises:
        ValueError: The data cannot be decoded.
    """
    decoder = _get_decoder()
    if _backend.startswith('libspng'):  # run without the Adler-32 check
        verify_png_crcs(data, where)
    decoder(data, out, where)


def read_png_bytes(path: str) -> bytes:
    """The contents of ``path``; FileNotFoundError names a missing file."""
    try:  # os-level calls: half the cost of open().read() for small files
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            size = os.fstat(fd).st_size
            data = os.read(fd, size)
        finally:
            os.close(fd)
        if len(data) != size:  # short read (some network filesystems)
            with open(path, 'rb') as f:
                data = f.read()
        return data
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        raise FileNotFoundError(f'File not found: {path}') from err


def decode_rgb_ids(data: bytes, where: str = '<bytes>') -> np.ndarray:
    """Decode a COCO-panoptic PNG to ids ``R + 256 G + 65536 B``.

    Returns:
        uint32 array (H, W).

    Raises:
        ValueError: Not an 8-bit RGB / RGBA / palette PNG, or corrupt.
    """
    height, width = png_shape(data, where)
    ids = np.empty((height, width), np.uint32)
    decode_ids_into(data, ids.reshape(-1), where)
    return ids


def decode_ids_into(data: bytes, out: np.ndarray, where: str = '<bytes>'
                    ) -> None:
    """Decode a COCO-panoptic PNG into ids ``R + 256 G + 65536 B``.

    Args:
        data: The PNG file contents (check it with :func:`png_shape`).
        out: Contiguous uint32 array of exactly ``height * width`` elements.
        where: Names the file in error messages.

    Raises:
        ValueError: The data cannot be decoded.
    """
    fast = _get_fast()
    if not fast or fast.decode_ids(data, out) != 0:
        _decode_ids_general(data, out, where)


def _decode_ids_general(data: bytes, out: np.ndarray, where: str) -> None:
    """The general decoders (unusual or damaged files: decode or say why)."""
    buf = np.empty(3 * out.size + 1, np.uint8)
    decode_rgb_into(data, buf[:-1], where)
    out[...] = rgb_to_ids(buf, out.size).reshape(out.shape)


def decode_many_ids_into(datas: Sequence[bytes], sizes: Sequence[int],
                         wheres: Sequence[str], out: np.ndarray) -> None:
    """:func:`decode_ids_into` for several PNGs stored back to back in
    ``out`` (``sizes[k]`` = height * width of ``datas[k]``, as checked by
    :func:`png_shape`); the extension decodes them in one call."""
    if sum(sizes) != out.size:
        raise ValueError('decode_many_ids_into: sizes do not add up to '
                         f'{out.size}')
    fast = _get_fast()
    redo = ([k for k, _ in fast.decode_ids_many(datas, out)]
            if fast else range(len(datas)))
    if redo:
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        for k in redo:
            _decode_ids_general(datas[k], out[offsets[k]:offsets[k + 1]],
                                wheres[k])


def read_rgb_ids(path: str) -> np.ndarray:
    """Read a COCO-panoptic PNG file; see :func:`decode_rgb_ids`.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not an 8-bit RGB PNG or cannot be decoded.
    """
    return decode_rgb_ids(read_png_bytes(path), path)
