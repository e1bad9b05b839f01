//! The pieces of SVG text the plots share: the document, the axes with
//! their ticks and units, escaping.

use std::fmt::Write;

use super::axis;

/// Margins around the plotting area, in pixels: left, right, top, bottom.
pub(super) const MARGIN: (f64, f64, f64, f64) = (120.0, 20.0, 10.0, 40.0);

/// An SVG document of `width` × `height` pixels being written.
pub(super) struct Doc {
    pub(super) text: String,
    width: f64,
    height: f64,
}

impl Doc {
    /// A document with `class` on its root element.
    pub(super) fn new(width: f64, height: f64, class: &str) -> Doc {
        let mut text = String::new();
        let _ = write!(
            text,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="{class}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
        );
        Doc {
            text,
            width,
            height,
        }
    }

    /// The plotting area: x from, x to, y from (top), y to (bottom).
    pub(super) fn area(&self) -> (f64, f64, f64, f64) {
        let (left, right, top, bottom) = MARGIN;
        (left, self.width - right, top, self.height - bottom)
    }

    /// The x axis from 0 to `max` (drawn to its last tick, which is
    /// returned), labelled `unit`, with vertical grid lines.
    pub(super) fn x_axis(&mut self, max: f64, unit: &str) -> f64 {
        let (x0, x1, y0, y1) = self.area();
        let ticks = axis::ticks(max, 8);
        let top = *ticks.last().unwrap_or(&1.0);
        let step = ticks.get(1).copied().unwrap_or(1.0);
        for tick in &ticks {
            let x = x0 + tick / top * (x1 - x0);
            let _ = write!(
                self.text,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#e0e0e0"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y1 + 14.0,
                axis::label(*tick, step)
            );
        }
        let _ = write!(
            self.text,
            r##"<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#424242"/><text class="x-unit" x="{}" y="{}" text-anchor="middle">{}</text>"##,
            (x0 + x1) / 2.0,
            y1 + 32.0,
            escape(unit)
        );
        top
    }

    /// A numeric y axis from 0 to `max` (drawn to its last tick, which is
    /// returned), labelled `unit`, with horizontal grid lines.
    pub(super) fn y_axis(&mut self, max: f64, unit: &str) -> f64 {
        let (x0, x1, y0, y1) = self.area();
        let ticks = axis::ticks(max, 5);
        let top = *ticks.last().unwrap_or(&1.0);
        let step = ticks.get(1).copied().unwrap_or(1.0);
        for tick in &ticks {
            let y = y1 - tick / top * (y1 - y0);
            let _ = write!(
                self.text,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                axis::label(*tick, step)
            );
        }
        let _ = write!(
            self.text,
            r##"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#424242"/><text class="y-unit" x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"##,
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            escape(unit)
        );
        top
    }

    /// The finished document.
    pub(super) fn finish(mut self) -> String {
        self.text.push_str("</svg>");
        self.text
    }
}

/// `text` safe inside SVG text and attributes.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
