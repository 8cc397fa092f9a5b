"""The silo map laid out for SVG: categories as columns, systems as boxes, flows as curves.

Pure geometry; the template (templates/_silomap.html) draws it. Colours come from CSS
classes named after the state, and every box also says its state in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.insights.health import Edge, SiloMap, SystemView

COL_W, COL_GAP = 190, 90  # a column's box width, and the room between columns for curves
ROW_H, BOX_H = 104, 76
TOP, LEFT = 48, 24
CATEGORY_TITLES = {"crm": "CRM", "accounting": "Accounting", "email": "Email",
                   "project": "Project tools", "files": "Files & spreadsheets",
                   "other": "Other"}
NAME_MAX = 24
LANE_H = 22  # room under the boxes for each leg that skips columns


@dataclass(frozen=True)
class Column:
    """A category's title and where it stands."""

    category: str
    title: str
    x: int


@dataclass(frozen=True)
class Box:
    """One system's box."""

    system: SystemView
    x: int
    y: int
    label: str  # the name, shortened to fit

    @property
    def cy(self) -> int:
        """Vertical middle."""
        return self.y + BOX_H // 2


@dataclass(frozen=True)
class Curve:
    """One flow leg: an SVG path, and where its label goes."""

    edge: Edge
    path: str
    label_x: int
    label_y: int


@dataclass(frozen=True)
class Layout:
    """The whole drawing."""

    width: int
    height: int
    columns: tuple[Column, ...]
    boxes: tuple[Box, ...]
    curves: tuple[Curve, ...]
    box_w: int = COL_W
    box_h: int = BOX_H


def _short(name: str) -> str:
    return name if len(name) <= NAME_MAX else name[:NAME_MAX - 1] + "…"


def _curve(edge: Edge, a: Box, b: Box, k: int) -> Curve:
    """A cubic curve from a to b between neighbouring columns or within one; the k-th
    leg between the same two boxes is shifted so they do not overlap."""
    shift = (k % 5 - 2) * 7 if k else 0
    ay, by = a.cy + shift, b.cy + shift
    if b.x > a.x:
        x0, x1 = a.x + COL_W, b.x
        dx = max(40, (x1 - x0) // 2)
        c1, c2 = x0 + dx, x1 - dx
    elif b.x < a.x:
        x0, x1 = a.x, b.x + COL_W
        dx = max(40, (x0 - x1) // 2)
        c1, c2 = x0 - dx, x1 + dx
    else:  # same column: bulge out to the right, into the gap
        x0 = x1 = a.x + COL_W
        c1 = c2 = x0 + COL_GAP - 20 - abs(shift)
    path = f"M {x0} {ay} C {c1} {ay}, {c2} {by}, {x1} {by}"
    # The point half-way along a cubic Bezier curve: (P0 + 3 P1 + 3 P2 + P3) / 8.
    mx = (x0 + 3 * c1 + 3 * c2 + x1) // 8
    my = (ay + 3 * ay + 3 * by + by) // 8
    return Curve(edge, path, mx, my - 4)


def _under(edge: Edge, a: Box, b: Box, lane_y: int, k: int) -> Curve:
    """A leg that skips columns: out of a's side into the gap beside its column, down to a
    lane under every box, along it, and up the gap beside b's column into b. Gaps and
    lanes hold no boxes, so the leg never runs behind a box it does not connect."""
    d = 1 if b.x > a.x else -1
    off = 16 + (k % 5) * 12
    sx, tx = (a.x + COL_W, b.x) if d > 0 else (a.x, b.x + COL_W)
    gx0, gx1 = sx + d * off, tx - d * off
    r = 8  # corner radius
    path = (f"M {sx} {a.cy} L {gx0 - d * r} {a.cy} Q {gx0} {a.cy} {gx0} {a.cy + r} "
            f"L {gx0} {lane_y - r} Q {gx0} {lane_y} {gx0 + d * r} {lane_y} "
            f"L {gx1 - d * r} {lane_y} Q {gx1} {lane_y} {gx1} {lane_y - r} "
            f"L {gx1} {b.cy + r} Q {gx1} {b.cy} {gx1 + d * r} {b.cy} L {tx} {b.cy}")
    return Curve(edge, path, (gx0 + gx1) // 2, lane_y - 4)


def layout(smap: SiloMap) -> Layout:
    """Place every system of the map and route every flow leg."""
    columns, boxes = [], {}
    rows = 0
    for i, cat in enumerate(smap.categories):
        x = LEFT + i * (COL_W + COL_GAP)
        columns.append(Column(cat, CATEGORY_TITLES.get(cat, cat), x))
        members = [s for s in smap.systems if s.category == cat]
        for j, s in enumerate(members):
            boxes[s.name] = Box(s, x, TOP + j * ROW_H, _short(s.name))
        rows = max(rows, len(members))
    curves = []
    legs: dict[frozenset[str], int] = {}
    bottom = TOP + max(1, rows) * ROW_H
    lanes = 0
    for e in smap.edges:
        a, b = boxes.get(e.source), boxes.get(e.target)
        if a is None or b is None:
            continue
        pair = frozenset((e.source, e.target))
        k = legs.get(pair, 0)
        legs[pair] = k + 1
        if abs(a.x - b.x) > COL_W + COL_GAP:
            curves.append(_under(e, a, b, bottom + LANE_H * (lanes + 1), lanes))
            lanes += 1
        else:
            curves.append(_curve(e, a, b, k))
    width = LEFT * 2 + max(1, len(columns)) * (COL_W + COL_GAP)
    height = bottom + LANE_H * (lanes + 1) + 8
    return Layout(width, height, tuple(columns), tuple(boxes.values()), tuple(curves))
