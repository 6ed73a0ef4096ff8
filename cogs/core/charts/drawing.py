"""Draw the /progress chart: comfort per point and where the member leans, as one PNG.

It runs in the chart worker process (``pool.py``); it also stays safe to call from
several threads at once (the benchmark and tests do), so this module never imports
``matplotlib.pyplot``: pyplot keeps a global figure registry and a global
"current figure/axes", and choosing its backend mutates process-wide state. Instead every call
builds its own ``Figure`` bound to its own ``FigureCanvasAgg`` and touches no shared mutable
state: no ``matplotlib.use()``, no ``rcParams`` writes, no ``rc_context`` (which swaps the
global ``rcParams`` and would leak between threads). Every style is passed to the artist that
needs it. Matplotlib keys its FreeType font cache on the thread id, so separate figures in
separate threads on the Agg canvas are safe.

Speed: the layout is computed here in pixels instead of by constrained layout (which costs an
extra draw pass), and the PNG is quantized to a palette, which encodes faster and stays small
even for a year of tangled lines.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from cogs.core.charts.samples import ComfortSample, LeaningSample

__all__ = [
    "COMFORT_PLACEHOLDER",
    "LEANING_PLACEHOLDER",
    "NOTHING_PLACEHOLDER",
    "ComfortSample",
    "LeaningSample",
    "render_progress_chart",
]


# Friendly words shown instead of an empty panel; the cog normally only calls us with data.
COMFORT_PLACEHOLDER = "No comfort ratings yet — they appear once you reflect on a point."
LEANING_PLACEHOLDER = "No decision recorded yet — try /decide"
NOTHING_PLACEHOLDER = "Nothing to chart yet — reflect on a point or record where you lean."

LEANING_TICKS = (-2, -1, 0, 1, 2)
LEANING_NAMES = ("no", "leaning no", "undecided", "leaning yes", "yes")

# Okabe-Ito, minus yellow (unreadable on white), ordered so neighbours contrast: readable
# with the common colour-vision deficiencies. Distinct marker shapes double-code each line so
# a point never depends on colour alone; there are more shapes than colours, so an extra
# unknown slug never repeats a colour *and* a shape.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")
LINESTYLES = ("-", "--", ":", "-.")  # only cycles in once the palette runs out
TEXT_COLOUR = "#222222"
QUIET_COLOUR = "#555555"
GRID_COLOUR = "#DDDDDD"
BACKGROUND = "#FFFFFF"
LEANING_COLOUR = "#0072B2"
TITLE_SIZE = 15.0
TEXT_SIZE = 11.0

# ~1000x700 px: big enough to read when Discord shrinks the preview.
WIDTH_PX, HEIGHT_PX, DPI = 1000, 700, 100
# Fixed margins in pixels, sized for 11 pt tick labels ("leaning yes" is the widest) and
# 15 pt titles; the right margin is measured from the legend at render time.
LEFT_PX, RIGHT_PAD_PX, TOP_PX, BOTTOM_PX = 105, 15, 40, 55
GAP_PX = 50  # between panels when the top one hides its date labels
GAP_WITH_DATES_PX = 80  # ... and when it shows them
LEGEND_GAP_PX = 12
MAX_LABEL = 28  # longer legend labels are cut, so the plot keeps its width
MIN_SPAN = timedelta(days=1)  # narrowest x window, so one sample or one day still has an axis
PNG_COLOURS = 256  # palette size: anti-aliased lines on white need far fewer; saves ~60 %


def render_progress_chart(
    comfort: Sequence[ComfortSample],
    leanings: Sequence[LeaningSample],
    *,
    labels: Mapping[str, str],
    tz: tzinfo = UTC,
) -> bytes:
    """Return a PNG of comfort per point over time above a step plot of the member's leaning.

    ``labels`` maps slug to short label in the essay's order; colours and the legend follow it.
    Samples whose slug is not in ``labels`` are drawn under their slug, after the known points.
    ``tz`` is the member's zone: the date axis is read in it. Input need not be sorted. A panel
    without data shows a short friendly sentence; with no data at all the PNG is just a message.
    Thread-safe: meant for ``asyncio.to_thread``.
    """
    comfort_sorted = sorted(comfort, key=lambda s: _aware(s.at))
    leanings_sorted = sorted(leanings, key=lambda s: _aware(s.at))

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor=BACKGROUND)
    # Binding the Agg canvas to this figure picks the backend for it alone, with no
    # process-wide matplotlib.use().
    FigureCanvasAgg(fig)

    if not comfort_sorted and not leanings_sorted:
        fig.text(
            0.5, 0.5, _plain(NOTHING_PLACEHOLDER), ha="center", va="center",
            fontsize=16, color=TEXT_COLOUR,
        )  # fmt: skip
        return _png(fig)

    # Both panels share one time window so a dip in comfort lines up with a change of mind.
    times = [_aware(s.at) for s in comfort_sorted] + [_aware(s.at) for s in leanings_sorted]
    start, end = min(times), max(times)
    last = end  # the newest sample: the current leaning is carried up to here
    if end - start < MIN_SPAN:
        middle = start + (end - start) / 2
        start, end = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
    pad = (end - start) * 0.03
    xlim = (_num(start - pad), _num(end + pad))

    top = fig.add_axes((0.0, 0.5, 1.0, 0.5))  # real positions are set by _place below
    bottom = fig.add_axes((0.0, 0.0, 1.0, 0.5))
    legend_px = 0.0
    if comfort_sorted:
        legend_px = _draw_comfort(top, comfort_sorted, labels, xlim, tz)
    else:
        _placeholder(top, "Comfort per point", COMFORT_PLACEHOLDER)
    if leanings_sorted:
        _draw_leaning(bottom, leanings_sorted, last, xlim, tz)
    else:
        _placeholder(bottom, "Where you lean", LEANING_PLACEHOLDER)

    both = bool(comfort_sorted and leanings_sorted)
    if both:
        # One date axis is enough when both panels show data: the bottom one.
        top.tick_params(axis="x", labelbottom=False)
    # The panel with data gets the room; an empty one only needs a line of text.
    share = 0.6 if both else (0.8 if comfort_sorted else 0.2)
    _place(top, bottom, share, legend_px, GAP_PX if both else GAP_WITH_DATES_PX)
    return _png(fig)


def _draw_comfort(
    ax: Axes,
    samples: Sequence[ComfortSample],
    labels: Mapping[str, str],
    xlim: tuple[float, float],
    tz: tzinfo,
) -> float:
    """Draw one line per point; return the legend's width in pixels, for the right margin."""
    by_slug: dict[str, list[ComfortSample]] = {}
    for sample in samples:  # already sorted by time, so each line is too
        by_slug.setdefault(sample.slug, []).append(sample)

    # Colour by position in the essay, not by which points have data, so a point keeps its
    # colour from one member (and one week) to the next.
    order = [*labels, *sorted(slug for slug in by_slug if slug not in labels)]
    per_line = max(len(points) for points in by_slug.values())
    # Dense lines get small markers so a year of daily reflections stays a line, not a smear.
    marker_size = 6.0 if per_line <= 40 else 3.5 if per_line <= 150 else 2.0
    for index, slug in enumerate(order):
        points = by_slug.get(slug)
        if not points:
            continue
        ax.plot(
            _nums([p.at for p in points]),
            [p.rating for p in points],
            label=_short(labels.get(slug, slug)),
            color=PALETTE[index % len(PALETTE)],
            marker=MARKERS[index % len(MARKERS)],
            linestyle=LINESTYLES[(index // len(PALETTE)) % len(LINESTYLES)],
            markersize=marker_size,
            linewidth=1.8,
        )

    ax.set_title("Comfort per point", loc="left", fontsize=TITLE_SIZE, color=TEXT_COLOUR, pad=8)
    ax.set_ylabel("How well you can live with it", fontsize=TEXT_SIZE, color=TEXT_COLOUR)
    ax.set_ylim(0.6, 5.4)
    ax.set_yticks([1, 2, 3, 4, 5])
    _style_time_axis(ax, xlim, tz)
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=TEXT_SIZE,
        frameon=False,
        labelcolor=TEXT_COLOUR,
        borderaxespad=0.0,
        borderpad=0.0,
        markerscale=max(1.0, 5.0 / marker_size),  # legend swatches stay legible when dense
    )
    # Measuring one legend is far cheaper than a constrained-layout pass over the figure.
    # (With no renderer given, it uses the figure's own Agg canvas.)
    return float(legend.get_window_extent().width)


def _draw_leaning(
    ax: Axes,
    samples: Sequence[LeaningSample],
    last: datetime,
    xlim: tuple[float, float],
    tz: tzinfo,
) -> None:
    xs = _nums([s.at for s in samples])
    ys = [s.leaning for s in samples]
    # A leaning holds until the next one: carry the last step to the newest thing on the
    # chart so the member's current position is a visible segment, not a lone dot.
    ax.step([*xs, _num(last)], [*ys, ys[-1]], where="post", color=LEANING_COLOUR, linewidth=2.2)
    ax.plot(xs, ys, linestyle="none", marker="o", markersize=4.5, color=LEANING_COLOUR)

    ax.set_title("Where you lean", loc="left", fontsize=TITLE_SIZE, color=TEXT_COLOUR, pad=8)
    ax.set_ylim(-2.5, 2.5)
    ax.set_yticks(LEANING_TICKS, LEANING_NAMES)
    ax.axhline(0, color="#999999", linewidth=1.0, linestyle="--", zorder=0)
    _style_time_axis(ax, xlim, tz)


def _style_time_axis(ax: Axes, xlim: tuple[float, float], tz: tzinfo) -> None:
    # The x values are plain floats (matplotlib day numbers), so limits are set here rather
    # than left to the date converter, which widens a single point to a four-year window.
    ax.set_xlim(*xlim)
    # matplotlib.dates ships without type hints, hence the targeted ignores.
    locator = mdates.AutoDateLocator(tz=tz, minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=tz)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.grid(True, color=GRID_COLOUR, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=TEXT_SIZE, colors=TEXT_COLOUR)
    ax.xaxis.get_offset_text().set_fontsize(TEXT_SIZE)
    ax.set_facecolor(BACKGROUND)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _placeholder(ax: Axes, title: str, message: str) -> None:
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=TITLE_SIZE, color=TEXT_COLOUR, pad=8)
    ax.text(
        0.5, 0.5, _plain(message), transform=ax.transAxes, ha="center", va="center",
        fontsize=14, color=QUIET_COLOUR,
    )  # fmt: skip


def _place(top: Axes, bottom: Axes, top_share: float, legend_px: float, gap_px: int) -> None:
    """Stack the panels, in figure fractions computed from pixel margins."""
    right_px = RIGHT_PAD_PX + (legend_px + LEGEND_GAP_PX if legend_px else 0.0)
    width = max(0.3, (WIDTH_PX - LEFT_PX - right_px) / WIDTH_PX)  # absurd labels can't invert
    left = LEFT_PX / WIDTH_PX
    usable = (HEIGHT_PX - TOP_PX - BOTTOM_PX - gap_px) / HEIGHT_PX
    bottom_h = usable * (1.0 - top_share)
    top_h = usable * top_share
    y_bottom = BOTTOM_PX / HEIGHT_PX
    bottom.set_position((left, y_bottom, width, bottom_h))
    top.set_position((left, y_bottom + bottom_h + gap_px / HEIGHT_PX, width, top_h))
    if legend_px:
        # The legend is anchored to the axes' right edge; nudge it clear of the last marker.
        legend = top.get_legend()
        if legend is not None:
            legend.set_bbox_to_anchor((1.0 + LEGEND_GAP_PX / (width * WIDTH_PX), 1.0))


def _png(fig: Figure) -> bytes:
    # Raw RGBA from the figure's own Agg canvas, then a 256-colour palette PNG: the background
    # is opaque white, so alpha carries nothing, and flat lines on white look identical with a
    # palette while the file is ~3x smaller and faster to compress than matplotlib's RGBA PNG.
    # No metadata chunks (no "Software" version stamp): same input, same bytes.
    raw = io.BytesIO()
    fig.savefig(raw, format="raw", dpi=DPI, facecolor=BACKGROUND)
    size = (round(fig.get_figwidth() * DPI), round(fig.get_figheight() * DPI))
    image = Image.frombuffer("RGBA", size, raw.getvalue(), "raw", "RGBA", 0, 1).convert("RGB")
    palette = image.quantize(
        colors=PNG_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    return buffer.getvalue()


def _aware(at: datetime) -> datetime:
    # Callers promise aware UTC; a naive value is read as UTC rather than crash the sort.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _num(at: datetime) -> float:
    return _nums([at])[0]


def _nums(ats: Sequence[datetime]) -> list[float]:
    # One vectorised conversion per line instead of one call per sample.
    aware = [_aware(at) for at in ats]
    days: list[float] = mdates.date2num(aware).tolist()  # type: ignore[no-untyped-call]
    return days


def _plain(text: str) -> str:
    # Matplotlib renders text between two "$" as mathtext (and may raise on it); a label such
    # as "$100k vs $50k" must show as typed.
    return text.replace("$", r"\$")


def _short(label: str) -> str:
    label = " ".join(label.split())  # a newline in a legend entry would wreck the layout
    if len(label) > MAX_LABEL:
        label = label[: MAX_LABEL - 1].rstrip() + "…"
    return _plain(label)
