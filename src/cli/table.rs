//! A plain-text table: a header and rows of cells, columns padded to their widest cell. Widths
//! count characters, not bytes, so Hebrew names line up as well as ASCII does.

use std::fmt::Write as _;

/// A table under construction.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|title| (*title).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, columns separated by two spaces, no trailing
    /// spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let _infallible = write!(line, "{cell:<width$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let mut table = Table::new(&["id", "status"]);
        table.row(vec!["a".into(), "waiting".into()]);
        table.row(vec!["bbbb".into(), "ok".into()]);
        assert_eq!(
            table.render(),
            "id    status\na     waiting\nbbbb  ok\n",
            "{}",
            table.render()
        );
    }

    #[test]
    fn hebrew_cells_are_measured_in_characters() {
        let mut table = Table::new(&["name", "x"]);
        table.row(vec!["דנה".into(), "1".into()]);
        table.row(vec!["abcdef".into(), "2".into()]);
        let rendered = table.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[1].chars().count(), lines[2].chars().count());
    }
}
