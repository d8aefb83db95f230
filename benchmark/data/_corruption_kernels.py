"""Fast, bit-exact replacements for the slow inner loops of the `imagecorruptions` algorithms.

Each function here performs the same IEEE operations, in the same order, as the package code (or
the library call it makes) that it replaces, named in its docstring, or moves the same pixels by
exact integer index arithmetic; so the results are identical and only memory traffic and Python
overhead change. tests/test_corruptions.py checks each against the package, scipy or a verbatim
reference loop.
"""
from __future__ import annotations

import math

import numpy as np

# Rows per block: a float64 block of ~1 MB (21 rows of a 2048-wide RGB frame) and its temporary
# stay near the core while all taps are applied to it; measured fastest among 0.25-4 MB (smaller
# blocks pay more per-call overhead, larger ones fall out of cache).
_BLOCK_BYTES = 1 << 20


def _rows_per_block(row_bytes: int) -> int:
    return max(1, _BLOCK_BYTES // max(1, row_bytes))


# --------------------------------------------------------------------------------------------
# The package's common last step: np.clip(x, 0, 1) * 255, truncated to uint8 by the caller
# --------------------------------------------------------------------------------------------
def rows_to_uint8(shape: tuple[int, ...], block_of) -> np.ndarray:
    """`np.uint8(np.clip(v, 0, 1) * 255)` of a float (H, W[, C]) image made row block by row block.

    `block_of(rows)` returns the float values of rows `rows` (a slice) as an array the caller may
    overwrite; blocks of ~1 MB stay in cache through the corruption's last per-pixel steps and this
    ending, with no full-frame float temporaries. Every step is per pixel, so blocks change nothing
    but speed.
    """
    out = np.empty(shape, dtype=np.uint8)
    step = _rows_per_block(int(np.prod(shape[1:])) * 8)
    for r0 in range(0, shape[0], step):
        rows = slice(r0, min(shape[0], r0 + step))
        block = block_of(rows)
        np.clip(block, 0, 1, out=block)
        block *= 255
        out[rows] = block  # float -> uint8 truncates, as np.uint8(...) does
    return out


def unit_to_uint8(x: np.ndarray, edit=None) -> np.ndarray:
    """`np.uint8(np.clip(x, 0, 1) * 255)` for a float (H, W[, C]) array, in row blocks.

    `edit(block, rows)`, if given, first changes the row block `x[rows]` in place (a per-pixel
    step of the corruption, moved here so it runs on a block in cache instead of on the whole
    frame). x is overwritten.
    """
    def block_of(rows):
        block = x[rows]
        if edit is not None:
            edit(block, rows)
        return block

    return rows_to_uint8(x.shape, block_of)


# --------------------------------------------------------------------------------------------
# Motion blur (package: corruptions._motion_blur + shift)
# --------------------------------------------------------------------------------------------
def motion_blur_offsets(shape: tuple[int, ...], radius: int, sigma: float, angle: float):
    """The package's kernel weights and (dy, dx) shifts, including its early stop at the border."""
    width = radius * 2 + 1
    taps = np.exp(-np.arange(width) ** 2 / (2 * (sigma ** 2))) / (np.sqrt(2 * np.pi) * sigma)
    kernel = taps / np.sum(taps)
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    offsets = []
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= shape[0] or abs(dx) >= shape[1]:
            break  # the package stops once the motion leaves the image
        offsets.append((dy, dx))
    return kernel, offsets


def motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Same float64 result as the package's `_motion_blur(x, radius, sigma, angle)`.

    The package sums `kernel[i] * shift(x, dx_i, dy_i)` over taps, each tap a full-frame np.roll
    plus a full-frame multiply-add. `shift` equals indexing with clamped coordinates, so we pad
    once with edge values and read every tap as a view; the taps are accumulated in the same order
    (so the same roundings) but block by block, which keeps the accumulator in cache. The padded
    copy is float64 up front (exact for uint8), so no tap pays a uint8 -> float64 cast.
    """
    kernel, offsets = motion_blur_offsets(x.shape, radius, sigma, angle)
    h, w = x.shape[:2]  # offsets[0] is (0, 0): never empty
    dys = [o[0] for o in offsets]
    dxs = [o[1] for o in offsets]
    top, bottom = max(0, max(dys)), max(0, -min(dys))
    left, right = max(0, max(dxs)), max(0, -min(dxs))
    pad = ((top, bottom), (left, right)) + ((0, 0),) * (x.ndim - 2)
    padded = np.pad(np.asarray(x, dtype=np.float64), pad, mode="edge")
    out = np.empty(x.shape, dtype=np.float64)
    row_elems = int(np.prod(x.shape[1:]))
    rows = _rows_per_block(row_elems * 8)
    tmp = np.empty((rows,) + x.shape[1:], dtype=np.float64)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        acc = out[r0:r1]
        t = tmp[: r1 - r0]
        for i, (dy, dx) in enumerate(offsets):
            # shift(x, dx, dy)[r, c] == x[clip(r - dy), clip(c - dx)]
            view = padded[top - dy + r0: top - dy + r1, left - dx: left - dx + w]
            if i == 0:
                # the package adds the first product to float32 zeros: exact, so a plain product
                np.multiply(kernel[0], view, out=acc)
            else:
                np.multiply(kernel[i], view, out=t)
                np.add(acc, t, out=acc)
    return out


# --------------------------------------------------------------------------------------------
# Plasma fractal (package: corruptions.plasma_fractal, fog)
# --------------------------------------------------------------------------------------------
def _plus_next(a: np.ndarray, axis: int) -> np.ndarray:
    """a + np.roll(a, -1, axis), without materialising the rolled copy."""
    a = np.moveaxis(a, axis, 0)
    out = np.empty_like(a)
    np.add(a[:-1], a[1:], out=out[:-1])
    np.add(a[-1], a[0], out=out[-1])
    return np.moveaxis(out, 0, axis)


def _plus_previous(a: np.ndarray, axis: int) -> np.ndarray:
    """a + np.roll(a, 1, axis), without materialising the rolled copy."""
    a = np.moveaxis(a, axis, 0)
    out = np.empty_like(a)
    np.add(a[1:], a[:-1], out=out[1:])
    np.add(a[0], a[-1], out=out[0])
    return np.moveaxis(out, 0, axis)


def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.RandomState,
                   rows: int, cols: int) -> np.ndarray:
    """The package's `plasma_fractal(mapsize, wibbledecay)[:rows, :cols]`, same draws, same bits.

    The package keeps one (mapsize, mapsize) array and, per step, reads its corner / centre grids
    as strided views, adds np.roll copies of them and writes the new points back strided. Here
    each grid is its own contiguous array: corners C, centres D (squares), and the diamond points
    left of (L) and above (T) the centres; the next step's corners interleave the four. Sums keep
    the package's grouping and operands, and C + roll(C, -1, 0) is formed once: the package
    computes it twice (squares, then the upper diamonds) from the same, unchanged corners.
    """
    assert mapsize & (mapsize - 1) == 0
    corners = np.zeros((1, 1), dtype=np.float64)
    wibble = 100

    def wibbledmean(total: np.ndarray) -> np.ndarray:
        total /= 4  # total / 4 + wibble * uniform(...), the package's draw, in place
        noise = rng.uniform(-wibble, wibble, total.shape)
        noise *= wibble
        total += noise
        return total

    while True:
        down = _plus_next(corners, 0)
        centres = wibbledmean(_plus_next(down, 1))
        left = wibbledmean(_plus_previous(centres, 0) + _plus_next(corners, 1))
        top = wibbledmean(_plus_previous(centres, 1) + down)
        parts = (corners, left, top, centres)
        if 2 * corners.shape[0] == mapsize:
            break
        corners = _interleave(parts, 2 * corners.shape[0], 2 * corners.shape[1])
        wibble /= wibbledecay
    # the package normalises the whole map, then fog crops it: min and max are the whole map's
    # (so of the four grids), and v - min is monotone in v, so max(map - min) == max(map) - min;
    # only the crop is assembled and normalised
    low = min(p.min() for p in parts)
    high = max(p.max() for p in parts)
    crop = _interleave(parts, rows, cols)
    crop -= low
    crop /= high - low
    return crop


def _interleave(parts, rows: int, cols: int) -> np.ndarray:
    """The top-left (rows, cols) of the grid whose even/odd rows/columns are the four parts."""
    corners, left, top, centres = parts
    grid = np.empty((rows, cols), dtype=np.float64)
    even_r, odd_r, even_c, odd_c = (rows + 1) // 2, rows // 2, (cols + 1) // 2, cols // 2
    grid[0::2, 0::2] = corners[:even_r, :even_c]
    grid[0::2, 1::2] = left[:even_r, :odd_c]
    grid[1::2, 0::2] = top[:odd_r, :even_c]
    grid[1::2, 1::2] = centres[:odd_r, :odd_c]
    return grid


def fog_to_uint8(x_uint8: np.ndarray, scaled_plasma: np.ndarray, strength: float) -> np.ndarray:
    """The package's fog of an (H, W, 3) image after the fractal, as uint8, block by block.

    That is `np.uint8(np.clip((x / 255. + scaled_plasma[..., None]) * max_val / (max_val +
    strength), 0, 1) * 255)` with max_val = (x / 255.).max(), which equals x.max() / 255. because
    dividing by 255 is monotone. Every step is per pixel with the same operands, so working on
    row blocks (no full-frame float64 temporaries) changes nothing but speed.
    """
    max_val = x_uint8.max() / 255.
    denominator = max_val + strength

    def block_of(rows):
        block = x_uint8[rows] / 255.
        block += scaled_plasma[rows, :, np.newaxis]
        block *= max_val
        block /= denominator
        return block

    return rows_to_uint8(x_uint8.shape, block_of)

# --------------------------------------------------------------------------------------------
# Linear zoom (package: clipped_zoom's scipy.ndimage.zoom(x[..., None], (z, z, 1), order=1), snow)
# --------------------------------------------------------------------------------------------
def _linear_zoom_axis(n_in: int, n_out: int):
    """scipy's per-axis sample positions and order-1 spline weights (grid_mode=False)."""
    step = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
    position = np.arange(n_out, dtype=np.float64) * step
    start = np.floor(position)
    w0 = 1.0 - (position - start)
    w1 = 1.0 - w0  # scipy derives the last weight as 1 - the others, not as the fraction
    start = start.astype(np.intp)
    return start, np.minimum(start + 1, n_in - 1), w0, w1, position <= n_in - 1


def zoom_linear(img: np.ndarray, factor: float) -> np.ndarray:
    """`scipy.ndimage.zoom(img[..., None], (factor, factor, 1), order=1)[..., 0]` for 2-D float64.

    scipy sums, per output, (value * w_row) * w_col over the four neighbours (rows outer, columns
    inner) onto 0.0; the same products and sums are formed here with gathers. The row weight is
    applied to the gathered input rows before the columns are gathered (same products, on the
    narrower input width), and the output is accumulated in row blocks that stay in cache.
    """
    hgt, wid = img.shape
    out_h, out_w = int(round(hgt * factor)), int(round(wid * factor))
    r0, r1, a0, a1, rows_ok = _linear_zoom_axis(hgt, out_h)
    c0, c1, b0, b1, cols_ok = _linear_zoom_axis(wid, out_w)
    upper = img[r0] * a0[:, None]
    lower = img[r1] * a1[:, None]
    out = np.empty((out_h, out_w), dtype=np.float64)
    rows = _rows_per_block(out_w * 8)
    tmp = np.empty((rows, out_w), dtype=np.float64)
    for i0 in range(0, out_h, rows):
        i1 = min(out_h, i0 + rows)
        acc, t = out[i0:i1], tmp[: i1 - i0]
        for k, (weighted, cols, col_weight) in enumerate(
                ((upper, c0, b0), (upper, c1, b1), (lower, c0, b0), (lower, c1, b1))):
            # mode="clip": the indices are in range; "raise" would buffer the output
            np.take(weighted[i0:i1], cols, axis=1, out=t, mode="clip")
            t *= col_weight
            if k == 0:
                np.add(t, 0.0, out=acc)  # scipy's accumulator starts at +0.0 (-0.0 becomes +0.0)
            else:
                acc += t
    out[~rows_ok] = 0.0  # mode 'constant': a position that rounding put past the last sample
    out[:, ~cols_ok] = 0.0
    return out


# --------------------------------------------------------------------------------------------
# Snow's last step (package: the blend and the two added snow layers that end snow)
# --------------------------------------------------------------------------------------------
def snow_to_uint8(x: np.ndarray, gray: np.ndarray, layer_uint8: np.ndarray,
                  blend: float) -> np.ndarray:
    """The package's snow once its layer is made, as uint8, computed block by block.

    With x the (H, W, 3) float32 image / 255, gray its (H, W) cv2 grey and layer = layer_uint8
    / 255. (H, W): `np.uint8(np.clip(blend * x + (1 - blend) * np.maximum(x, gray * 1.5 + 0.5)
    + layer + rot90(layer, 2), 0, 1) * 255)`, the blend in float32 and the sums in float64 as in
    the package. Every step is per pixel with the same operands (a block's rows of the rotated
    layer are the mirrored rows at the other end), so row blocks change nothing but speed.
    """
    hgt = x.shape[0]

    def block_of(rows):
        image = x[rows]
        brightened = gray[rows, :, np.newaxis] * 1.5
        brightened += 0.5
        brightened = np.maximum(image, brightened)
        brightened *= 1 - blend
        mixed = image * blend
        mixed += brightened
        total = mixed + (layer_uint8[rows] / 255.)[..., np.newaxis]  # float32 + float64
        total += (layer_uint8[hgt - rows.stop:hgt - rows.start][::-1, ::-1] / 255.)[..., np.newaxis]
        return total

    return rows_to_uint8(x.shape, block_of)

# --------------------------------------------------------------------------------------------
# Spatter's mud (package: the end of spatter at severities 4 and 5)
# --------------------------------------------------------------------------------------------
def mud_to_uint8(x_uint8: np.ndarray, mask: np.ndarray, colour: tuple[float, ...]) -> np.ndarray:
    """The package's mud spatter once its float32 (H, W) mask is made, as uint8, block by block.

    The package computes x = float32 image / 255, x *= 1 - mask (float32), adds its float64 colour
    layer (colour[ch] * ones, times the mask) and returns np.clip(x + colour, 0, 1) * 255, which
    is then truncated to uint8. Every step is per pixel with the same operands, so row blocks (no
    full-frame temporaries) change nothing but speed.
    """
    def block_of(rows):
        image = x_uint8[rows].astype(np.float32)
        image /= 255
        block_mask = mask[rows]
        image *= (1 - block_mask)[..., np.newaxis]
        total = image.astype(np.float64)
        block_mask = block_mask.astype(np.float64)
        for ch, value in enumerate(colour):
            total[..., ch] += value * block_mask
        return total

    return rows_to_uint8(x_uint8.shape, block_of)

# --------------------------------------------------------------------------------------------
# HSV round trip (package: skimage.color.rgb2hsv -> edit -> skimage.color.hsv2rgb), used by
# brightness and saturate
# --------------------------------------------------------------------------------------------
# which of (v, t, p, q) skimage's hsv2rgb puts into (r, g, b) for each hue sector 0..5
_SECTOR_SOURCES = ((0, 1, 2), (3, 0, 2), (2, 0, 1), (2, 3, 0), (1, 2, 0), (0, 2, 3))


def hsv_adjust_to_uint8(x_uint8: np.ndarray, edit) -> np.ndarray:
    """`np.uint8(np.clip(hsv2rgb(edit(*rgb2hsv(x / 255.))), 0, 1) * 255)` computed block by block.

    `edit(h, s, v) -> (h, s, v)` works on flat float64 arrays. The arithmetic is skimage's
    (rgb2hsv: v = max, delta = max - min, s = delta / v, hue from the channel holding the max with
    blue over green over red on ties, (h / 6) % 1, zeros where delta == 0; hsv2rgb: sector =
    floor(6 h) % 6 choosing among v, p, q, t), only without its slow pieces (a reduction over the
    channel axis, fancy-indexed writes, np.choose). Every step is per pixel, so blocking changes
    nothing but speed.
    """
    flat = x_uint8.reshape(-1, 3)
    out = np.empty(flat.shape, dtype=np.uint8)
    n = flat.shape[0]
    step = 16384
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        arr = flat[i0:i1] / 255.
        r, g, b = arr[:, 0], arr[:, 1], arr[:, 2]
        # rgb2hsv
        v = np.maximum(np.maximum(r, g), b)
        delta = v - np.minimum(np.minimum(r, g), b)
        zero = delta == 0.0
        blue_max, green_max = b == v, g == v
        hue = np.where(blue_max, r - g, np.where(green_max, b - r, g - b))
        with np.errstate(invalid="ignore", divide="ignore"):
            s = delta / v
            hue /= delta
        hue += np.where(blue_max, 4.0, np.where(green_max, 2.0, 0.0))
        s[zero] = 0.0
        hue /= 6.0
        h = np.mod(hue, 1.0, out=hue)
        h[zero] = 0.0
        h, s, v = edit(h, s, v)
        # hsv2rgb
        h6 = h * 6
        hi = np.floor(h6)
        f = h6 - hi
        p = v * (1 - s)
        q = v * (1 - f * s)
        t = v * (1 - (1 - f) * s)
        candidates = (v, t, p, q)
        sector = hi.astype(np.uint8) % 6
        in_sector = [sector == k for k in range(1, 6)]
        rgb = np.empty((i1 - i0, 3), dtype=np.float64)
        for ch in range(3):
            column = rgb[:, ch]
            column[...] = candidates[_SECTOR_SOURCES[0][ch]]
            for k in range(1, 6):
                np.copyto(column, candidates[_SECTOR_SOURCES[k][ch]], where=in_sector[k - 1])
        np.clip(rgb, 0, 1, out=rgb)
        rgb *= 255
        out[i0:i1] = rgb  # float -> uint8 truncates, as np.uint8(...) does
    return out.reshape(x_uint8.shape)


# --------------------------------------------------------------------------------------------
# Glass blur pixel shuffle (package: the triple loop in corruptions.glass_blur)
# --------------------------------------------------------------------------------------------
def glass_shuffle_reference(x: np.ndarray, max_delta: int, iterations: int,
                            rng: np.random.RandomState) -> np.ndarray:
    """The package's loop, verbatim in behaviour: the reference twin of `glass_shuffle`.

    `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on an (H, W, 3) array builds its right-hand side from
    views, so it copies x[h', w'] into x[h, w] and leaves x[h', w'] as it was: not a swap.
    """
    x = x.copy()
    hgt, wid = x.shape[:2]
    for _ in range(iterations):
        for h in range(hgt - max_delta, max_delta, -1):
            for w in range(wid - max_delta, max_delta, -1):
                dx, dy = rng.randint(-max_delta, max_delta, size=(2,))
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x


def glass_shuffle(x: np.ndarray, max_delta: int, iterations: int,
                  rng: np.random.RandomState) -> np.ndarray:
    """Same pixels and same random draws as `glass_shuffle_reference`, without the Python loop.

    Per iteration the loop visits the interior pixels in descending raster order and sets
    new[p] = current[p + (dy, dx)]. The current value of that source is its new value if the
    source is an interior pixel visited earlier (it then points further along), and its value
    before the iteration otherwise. Following these pointers to their ends by pointer doubling
    gives every pixel's final source exactly (integer indices, no arithmetic on pixels). The loop
    draws two integers per visit; one `randint(size=(..., 2))` yields the same sequence, because
    the legacy generator's bounded draws keep no state between calls beyond the MT state (for
    int32 and int64 alike: both take one masked 32-bit draw per value for so small a range).
    """
    hgt, wid, ch = x.shape
    nh, nw = max(0, hgt - 2 * max_delta), max(0, wid - 2 * max_delta)
    n = nh * nw
    if n == 0:
        return np.array(x, copy=True)
    pix = np.ascontiguousarray(x).reshape(-1, ch)
    packed = pix[:, 0].astype(np.uint32)
    for c in range(1, ch):
        packed |= pix[:, c].astype(np.uint32) << np.uint32(8 * c)
    # visit (a, b) is pixel (hgt - d - a, wid - d - b); its index in the visit order is a * nw + b
    a = np.arange(nh, dtype=np.int32)[:, None]
    b = np.arange(nw, dtype=np.int32)[None, :]
    visit = (a * nw + b).ravel()
    corner = (hgt - max_delta) * wid + (wid - max_delta)
    target = (corner - a * wid - b).ravel()
    for _ in range(iterations):
        draws = rng.randint(-max_delta, max_delta, size=(nh, nw, 2), dtype=np.int32)
        # the source pixel (h + dy, w + dx) is visit (a - dy, b - dx)
        sa = a - draws[..., 1]
        sb = b - draws[..., 0]
        source = (corner - sa * wid - sb).ravel()
        pointer = (sa * nw + sb).ravel()
        earlier = ((sa >= 0) & (sa < nh) & (sb >= 0) & (sb < nw)).ravel()
        earlier &= pointer < visit
        active = np.flatnonzero(earlier).astype(np.int32)
        nxt = pointer[active]
        pointer[~earlier] = -1
        while active.size:
            nxt_source = source[nxt]
            nxt_pointer = pointer[nxt]
            source[active] = nxt_source
            pointer[active] = nxt_pointer
            keep = nxt_pointer >= 0
            active, nxt = active[keep], nxt_pointer[keep]
        new = packed.copy()
        new[target] = packed[source]
        packed = new
    result = np.empty((hgt * wid, ch), dtype=np.uint8)
    for c in range(ch):
        result[:, c] = packed >> np.uint32(8 * c)  # the uint8 store keeps the low byte
    return result.reshape(hgt, wid, ch)
