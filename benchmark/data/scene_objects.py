"""Things that stand in the street, drawn in metres and projected by the camera: vehicles as
boxes with windows, wheels and lights; people, riders on bicycles and motorcycles; poles with
traffic lights, signs and lamps; trees. Each function paints one object at its depth."""
from __future__ import annotations

import numpy as np

from benchmark.data.scene_draw import Camera, Canvas, blob_m, circle_m, quad, quads, rect_m, sprite
from benchmark.data.scene_styles import (
    BICYCLE, BUS, CAR, LIGHT, MOTORCYCLE, PERSON, POLE, RIDER, SIGN, TRAIN, TRUCK, VEGETATION,
)


def _mix(a, b, t: float) -> np.ndarray:
    return np.asarray(a, np.float32) * (1.0 - t) + np.asarray(b, np.float32) * t


# --------------------------------------------------------------------------------------------
# Vehicles: axis-aligned boxes. `along` = length along the road (seen from behind or the front),
# otherwise across it (seen from the side, e.g. on a cross street).


def _box(cam: Camera, cv: Canvas, cls: int, colour, X0, X1, Y0, Y1, Z0, Z1, end_decor=(), side_decor=(),
         along: bool = True) -> None:
    """Paint the visible faces of a box (the face at Z0, one lateral face, the top when the camera
    is above it) and decorations given as (a0, a1, b0, b1, colour) in face fractions."""
    colour = np.asarray(colour, np.float32)
    depth = Z0
    wx0, wx1 = cam.world_x(X0, Z0), cam.world_x(X1, Z0)
    lateral = X0 if wx0 > 0 else (X1 if wx1 < 0 else None)
    faces = []
    if lateral is not None:
        faces.append(("lat", quad(cam, lateral, Y0, Z0, lateral, Y1, Z1), colour * 0.78))
    if cam.height > Y1:
        top = np.array([cam.point(X0, Y1, Z0), cam.point(X1, Y1, Z0), cam.point(X1, Y1, Z1), cam.point(X0, Y1, Z1)])
        faces.append(("top", top, np.minimum(colour * 1.12, 1.0)))
    faces.append(("near", quad(cam, X0, Y0, Z0, X1, Y1, Z0), colour))
    for kind, poly, col in faces:
        cv.fill([poly], cls, col, depth)
        if kind == "top":
            continue
        # The near face shows the end (along) or the long side (across); the lateral face the other.
        decor = (end_decor if along else side_decor) if kind == "near" else (side_decor if along else end_decor)
        if not decor:
            continue
        a0, a1, b0, b1 = (np.array([d[i] for d in decor], np.float64) for i in range(4))
        ya, yb = Y0 + b0 * (Y1 - Y0), Y0 + b1 * (Y1 - Y0)
        if kind == "near":
            polys = quads(cam, X0 + a0 * (X1 - X0), ya, Z0, X0 + a1 * (X1 - X0), yb, Z0)
        else:
            polys = quads(cam, lateral, ya, Z0 + a0 * (Z1 - Z0), lateral, yb, Z0 + a1 * (Z1 - Z0))
        groups: dict[int, list[int]] = {}  # decorations sharing a colour object are painted together
        for i, d in enumerate(decor):
            groups.setdefault(id(d[4]), []).append(i)
        for idx in groups.values():
            cv.paint(polys[idx], decor[idx[0]][4])


def _tyres(axles, radius: float, length: float, height: float, tyre) -> list[tuple]:
    """Side-face decorations: a dark tyre at each axle (fractions of the face), from the ground."""
    r, hb = radius / length, min(1.0, 2 * radius / height)
    return [(t - r, t + r, 0.0, hb, tyre) for t in axles]


def _lights(cam: Camera, cv: Canvas, X0, X1, y, Z, mats, facing_camera: bool) -> None:
    col = mats["head_light"] if facing_camera else mats["tail_light"]
    s = cam.scale(Z)
    for xa in (X0 + 0.12 * (X1 - X0), X1 - 0.12 * (X1 - X0)):
        x, yy = cam.point(xa, y, Z)
        cv.add_light(x, yy, max(1.0, 0.12 * s), col)


def draw_car(cam, cv, rng, X, Z, colour, mats, along=True, facing_camera=False, scale=1.0) -> None:
    w, L, h, hb = 1.8 * scale, 4.3 * scale, 1.45 * scale, 0.95 * scale
    glass, lamp, tyre = mats["glass"], (mats["head_light"] if facing_camera else mats["tail_light"]), mats["tyre"]
    if along:
        X0, X1, Z0, Z1 = X - w / 2, X + w / 2, Z, Z + L
    else:
        X0, X1, Z0, Z1 = X - L / 2, X + L / 2, Z, Z + w
    # Cabin (behind the body's near face), then the body down to the ground with tyres painted on.
    cab_end = [(0.08, 0.92, 0.08, 0.92, glass)]
    cab_side = [(0.06, 0.46, 0.12, 0.9, glass), (0.54, 0.94, 0.12, 0.9, glass)]
    if along:
        _box(cam, cv, CAR, colour, X0 + 0.12, X1 - 0.12, hb, h, Z0 + 0.25 * L, Z0 + 0.72 * L,
             cab_end, cab_side, along)
    else:
        _box(cam, cv, CAR, colour, X0 + 0.25 * L, X0 + 0.72 * L, hb, h, Z0 + 0.1, Z1 - 0.1,
             cab_end, cab_side, along)
    body_end = [(0.0, 1.0, 0.0, 0.3, tyre), (0.03, 0.2, 0.65, 0.88, lamp), (0.8, 0.97, 0.65, 0.88, lamp),
                (0.38, 0.62, 0.36, 0.55, mats["sign_white"])]
    body_side = _tyres((0.18, 0.82), 0.33 * scale, L, hb, tyre)
    _box(cam, cv, CAR, colour, X0, X1, 0.0, hb, Z0, Z1, body_end, body_side, along)
    if along:
        _lights(cam, cv, X0, X1, 0.7 * scale, Z0, mats, facing_camera)


def draw_truck(cam, cv, rng, X, Z, colour, mats, facing_camera=False, scale=1.0) -> None:
    w, L, h, cab = 2.5 * scale, 8.0 * scale, 3.6 * scale, 2.4 * scale
    X0, X1 = X - w / 2, X + w / 2
    tyre, glass = mats["tyre"], mats["glass"]
    cab_col = _mix(colour, glass, 0.15) * 0.9
    cab_end = [(0.0, 1.0, 0.0, 0.17, tyre), (0.08, 0.92, 0.55, 0.9, glass)]
    cab_side = _tyres((0.5,), 0.5 * scale, cab, 2.9 * scale, tyre) + [(0.1, 0.9, 0.55, 0.9, glass)]
    cargo_end = [(0.0, 1.0, 0.0, 0.22, tyre), (0.49, 0.51, 0.25, 0.95, colour * 0.7),
                 (0.05, 0.2, 0.25, 0.3, mats["tail_light"]), (0.8, 0.95, 0.25, 0.3, mats["tail_light"])]
    cargo_side = _tyres((0.15, 0.32), 0.5 * scale, L - cab, h, tyre)
    if facing_camera:  # cab towards us
        _box(cam, cv, TRUCK, colour, X0, X1, 0.0, h, Z + cab, Z + L, cargo_end, cargo_side)
        _box(cam, cv, TRUCK, cab_col, X0 + 0.05, X1 - 0.05, 0.0, 2.9 * scale, Z, Z + cab, cab_end, cab_side)
    else:
        _box(cam, cv, TRUCK, cab_col, X0 + 0.05, X1 - 0.05, 0.0, 2.9 * scale, Z + L - cab, Z + L, cab_end, cab_side)
        _box(cam, cv, TRUCK, colour, X0, X1, 0.0, h, Z, Z + L - cab, cargo_end, cargo_side)
    _lights(cam, cv, X0, X1, 0.8 * scale, Z, mats, facing_camera)


def draw_bus(cam, cv, rng, X, Z, colour, mats, along=True, facing_camera=False, scale=1.0) -> None:
    w, L, h = 2.55 * scale, 12.0 * scale, 3.1 * scale
    if along:
        X0, X1, Z0, Z1 = X - w / 2, X + w / 2, Z, Z + L
    else:
        X0, X1, Z0, Z1 = X - L / 2, X + L / 2, Z, Z + w
    glass, tyre = mats["glass"], mats["tyre"]
    end = [(0.0, 1.0, 0.0, 0.1, tyre), (0.06, 0.94, 0.5 if facing_camera else 0.62, 0.94, glass),
           (0.05, 0.18, 0.18, 0.27, mats["tail_light"]), (0.82, 0.95, 0.18, 0.27, mats["tail_light"])]
    n_win = 6
    side = [((i + 0.08) / n_win, (i + 0.92) / n_win, 0.55, 0.9, glass) for i in range(n_win)]
    side += _tyres((0.15, 0.8), 0.5 * scale, L, h, tyre)
    _box(cam, cv, BUS, colour, X0, X1, 0.0, h, Z0, Z1, end, side, along)
    if along:
        _lights(cam, cv, X0, X1, 0.6 * scale, Z0, mats, facing_camera)


def draw_train(cam, cv, rng, X, Z, colour, mats, scale=1.0) -> None:
    w, L, h = 2.65, 28.0, 3.7
    X0, X1 = X - w / 2, X + w / 2
    glass, tyre = mats["glass"], mats["tyre"]
    end = [(0.0, 1.0, 0.0, 0.12, tyre), (0.08, 0.92, 0.55, 0.92, glass),
           (0.1, 0.25, 0.2, 0.28, mats["head_light"]), (0.75, 0.9, 0.2, 0.28, mats["head_light"])]
    n_win = 12
    side = [((i + 0.15) / n_win, (i + 0.85) / n_win, 0.55, 0.88, glass) for i in range(n_win)]
    side += [(0.0, 1.0, 0.0, 0.12, tyre), (0.0, 1.0, 0.14, 0.22, colour * 0.55)]
    _box(cam, cv, TRAIN, colour, X0, X1, 0.0, h, Z, Z + L, end, side, True)
    _lights(cam, cv, X0, X1, 0.9, Z, mats, True)


# --------------------------------------------------------------------------------------------
# People and two-wheelers: flat sprites facing the camera, in metres around the foot point.


def _figure(cam: Camera, cv: Canvas, X: float, Z: float, cls: int, rng, height: float, pose: str, skin, hair,
            top, bottom, flip: bool, origin=(0.0, 0.0)) -> None:
    """A person standing / walking, or seated on a saddle at `origin` (pose "ride"), in metres:
    legs, torso, arms, head, with the hair painted on."""
    H = height
    o = np.asarray(origin, np.float64)

    def fill(poly, col):
        cv.fill([sprite(cam, X, Z, np.asarray(poly, np.float64) + o, flip)], cls, col, Z)

    if pose == "ride":  # thigh forward to the knee, shin down to the pedal
        fill([(-0.06 * H, 0.03 * H), (0.06 * H, 0.03 * H), (0.19 * H, -0.18 * H), (0.12 * H, -0.38 * H),
              (0.06 * H, -0.38 * H), (0.11 * H, -0.2 * H), (-0.06 * H, -0.03 * H)], bottom)
        base, lean = 0.0, 0.08 * H
    else:  # both legs as one outline from the feet up to the hip
        half = (0.16 * H * rng.uniform(0.3, 1.0) if pose == "walk" else 0.03 * H) / 2
        hip = 0.5 * H
        fill([(-half - 0.05 * H, 0.0), (-0.11 * H, hip), (0.11 * H, hip), (half + 0.05 * H, 0.0), (half, 0.0),
              (0.0, 0.42 * H), (-half, 0.0)], bottom)
        base, lean = hip - 0.03 * H, 0.0
    sh = base + 0.33 * H
    fill([(-0.1 * H, base), (0.1 * H, base), (0.12 * H + lean, sh), (-0.12 * H + lean, sh)], top)
    if pose == "ride":  # arms forward to the handlebar
        arms = [[(s_ * 0.04 * H + lean, sh), (s_ * 0.04 * H + lean, sh - 0.06 * H), (0.3 * H, sh - 0.2 * H),
                 (0.31 * H, sh - 0.15 * H)] for s_ in (-1, 1)][:1]
    else:
        arms = [[(s_ * 0.12 * H, sh), (s_ * 0.16 * H, sh - 0.02 * H), (s_ * 0.15 * H, sh - 0.36 * H),
                 (s_ * 0.11 * H, sh - 0.36 * H)] for s_ in (-1, 1)]
    cv.fill([sprite(cam, X, Z, np.asarray(a, np.float64) + o, flip) for a in arms], cls, top, Z)
    hu, hv = lean * 1.2, sh + 0.09 * H
    fill(circle_m(hu, hv, 0.075 * H, 12), skin)
    hair_poly = np.concatenate([circle_m(hu, hv, 0.077 * H, 12)[:7], [(hu - 0.077 * H, hv - 0.01 * H)]])
    cv.paint([sprite(cam, X, Z, hair_poly + o, flip)], hair)


def draw_person(cam, cv, rng, X, Z, colours, mats, scale=1.0) -> None:
    H = rng.normal(1.72, 0.09) * scale
    pose = "walk" if rng.random() < 0.7 else "stand"
    top, bottom = colours
    _figure(cam, cv, X, Z, PERSON, rng, H, pose, mats["skin"], mats["hair"], top, bottom, bool(rng.random() < 0.5))


def _wheels(cam, cv, X, Z, cls, centres, r, tyre, rim, flip) -> None:
    """Two wheels side by side (non-overlapping, so one fill), rims painted inside the tyres."""
    cv.fill([sprite(cam, X, Z, circle_m(cu, r, r, 16), flip) for cu in centres], cls, tyre, Z)
    cv.paint([sprite(cam, X, Z, circle_m(cu, r, r * 0.78, 16), flip) for cu in centres], rim)


def draw_bicycle(cam, cv, rng, X, Z, colour, mats, flip: bool, scale=1.0) -> None:
    rim = _mix(mats["tyre"], mats["sign_white"], 0.45)
    _wheels(cam, cv, X, Z, BICYCLE, (-0.55 * scale, 0.55 * scale), 0.34 * scale, mats["tyre"], rim, flip)
    rear, bb, seat, head, front, bar = ((-0.55, 0.34), (0.0, 0.3), (-0.15, 0.92), (0.42, 0.95), (0.55, 0.34),
                                        (0.38, 1.1))
    frame = [[rear, bb, head, front], [rear, seat, bb], [seat, head, bar]]
    lines = [sprite(cam, X, Z, np.asarray(f, np.float64) * scale, flip) for f in frame]
    cv.fill_lines(lines, 0.07 * cam.scale(Z) * scale, BICYCLE, colour, Z)


def draw_motorcycle(cam, cv, rng, X, Z, colour, mats, flip: bool, scale=1.0) -> None:
    rim = _mix(mats["tyre"], mats["rail"], 0.6)
    _wheels(cam, cv, X, Z, MOTORCYCLE, (-0.72 * scale, 0.72 * scale), 0.33 * scale, mats["tyre"], rim, flip)
    body = np.array([(-0.85, 0.5), (-0.35, 0.88), (0.25, 0.95), (0.6, 1.08), (0.8, 0.62), (0.45, 0.32),
                     (-0.35, 0.3)]) * scale
    cv.fill([sprite(cam, X, Z, body, flip)], MOTORCYCLE, colour, Z)
    engine = np.array([(-0.25, 0.3), (0.3, 0.3), (0.35, 0.65), (-0.2, 0.65)]) * scale
    cv.paint([sprite(cam, X, Z, engine, flip)], _mix(colour, mats["tyre"], 0.6))
    x, y = sprite(cam, X, Z, [(0.78 * scale, 0.85 * scale)], flip)[0]
    cv.add_light(x, y, max(1.0, 0.1 * cam.scale(Z)), mats["head_light"])


def draw_rider(cam, cv, rng, X, Z, vehicle: str, colours, vehicle_colour, mats, scale=1.0) -> None:
    flip = bool(rng.random() < 0.5)
    if vehicle == "bicycle":
        draw_bicycle(cam, cv, rng, X, Z, vehicle_colour, mats, flip, scale)
        saddle = (-0.15 * scale, 0.95 * scale)
    else:
        draw_motorcycle(cam, cv, rng, X, Z, vehicle_colour, mats, flip, scale)
        saddle = (-0.2 * scale, 0.95 * scale)
    H = rng.normal(1.72, 0.07) * scale
    top, bottom = colours
    hair = mats["tyre"] if vehicle == "motorcycle" else mats["hair"]  # helmet
    _figure(cam, cv, X, Z - 0.01, RIDER, rng, H, "ride", mats["skin"], hair, top, bottom, flip, saddle)


# --------------------------------------------------------------------------------------------
# Street furniture and trees.


def draw_pole(cam, cv, X, Z, height, colour, width=0.2, arm: float = 0.0) -> tuple[float, float]:
    """A pole, optionally with a horizontal arm of signed length `arm` at the top; returns the
    arm's end (u, v) in metres for what hangs from it."""
    cv.fill([sprite(cam, X, Z, rect_m(-width / 2, 0.0, width / 2, height))], POLE, colour, Z)
    if arm:
        u0, u1 = sorted((0.0, arm))
        cv.fill([sprite(cam, X, Z, rect_m(u0, height - 0.16, u1, height))], POLE, colour, Z)
    return arm, height


def draw_traffic_light(cam, cv, rng, X, Z, u, v_top, mats, housing, lit: int | None = None) -> None:
    """A three-lamp signal head whose top is at (u, v_top) metres from the pole foot. Drawn a little
    larger than a real head (about 0.35 x 1.0 m) so that the class stays learnable at smoke resolution."""
    w, h = 0.6, 1.5
    cv.fill([sprite(cam, X, Z, rect_m(u - w / 2, v_top - h, u + w / 2, v_top))], LIGHT, housing, Z - 0.05)
    lit = int(rng.integers(0, 3)) if lit is None else lit
    names = ("lamp_red", "lamp_amber", "lamp_green")
    lamps = [sprite(cam, X, Z, circle_m(u, v_top - h * (i + 0.5) / 3, 0.18, 10)) for i in range(3)]
    cv.paint([lamps[i] for i in range(3) if i != lit], housing * 1.6 + 0.05)  # unlit lenses
    cv.paint([lamps[lit]], mats[names[lit]])
    c = sprite(cam, X, Z, [(u, v_top - h * (lit + 0.5) / 3)])[0]
    cv.add_light(c[0], c[1], max(1.0, 0.13 * cam.scale(Z)), mats[names[lit]])


def draw_sign(cam, cv, rng, X, Z, u, v, mats, face) -> None:
    """A sign plate centred at (u, v) metres: round, triangular, square or a wide direction board."""
    kind = rng.choice(4)
    red, blue, white, yellow = mats["sign_red"], mats["sign_blue"], mats["sign_white"], face
    if kind == 0:
        r = 0.42
        outer, inner = (red, white) if rng.random() < 0.6 else (blue, blue * 1.2)
        cv.fill([sprite(cam, X, Z, circle_m(u, v, r, 16))], SIGN, outer, Z - 0.05)
        cv.paint([sprite(cam, X, Z, circle_m(u, v, r * 0.72, 16))], np.minimum(inner, 1.0))
    elif kind == 1:
        r = 0.55
        tri = np.array([(u, v + r), (u + 0.87 * r, v - 0.5 * r), (u - 0.87 * r, v - 0.5 * r)])
        cv.fill([sprite(cam, X, Z, tri)], SIGN, red, Z - 0.05)
        cv.paint([sprite(cam, X, Z, (tri - (u, v)) * 0.62 + (u, v - 0.05))], white)
    elif kind == 2:
        cv.fill([sprite(cam, X, Z, rect_m(u - 0.4, v - 0.4, u + 0.4, v + 0.4))], SIGN, yellow, Z - 0.05)
        cv.paint([sprite(cam, X, Z, rect_m(u - 0.25, v - 0.25, u + 0.25, v + 0.25))], _mix(yellow, white, 0.5))
    else:
        cv.fill([sprite(cam, X, Z, rect_m(u - 0.7, v - 0.3, u + 0.7, v + 0.3))], SIGN, blue, Z - 0.05)
        cv.paint([sprite(cam, X, Z, rect_m(u - 0.55, v - 0.08, u + 0.4, v + 0.08))], white)


def draw_tree(cam, cv, rng, X, Z, leaf, mats, scale=1.0) -> None:
    trunk_h = rng.uniform(2.0, 4.0) * scale
    cv.fill([sprite(cam, X, Z, rect_m(-0.16, 0.0, 0.16, trunk_h + 0.5))], VEGETATION, mats["trunk"], Z)
    radius = rng.uniform(1.5, 3.0) * scale
    centre_v = trunk_h + radius * rng.uniform(0.7, 1.1)
    crown = blob_m(0.0, centre_v, radius, rng, squash=rng.uniform(0.8, 1.25))
    cv.fill([sprite(cam, X, Z, crown)], VEGETATION, leaf, Z)
    # Sun-lit upper part of the crown.
    lit = blob_m(-0.15 * radius, centre_v + 0.3 * radius, 0.55 * radius, rng)
    cv.paint([sprite(cam, X, Z, lit)], np.minimum(leaf * 1.2, 1.0))
