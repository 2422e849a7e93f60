//! A small RFC 4180 reader for `vendors import`: comma-separated fields, records ended by CRLF
//! or LF, fields in double quotes may hold commas, line breaks and doubled quotes (`""`).
//!
//! It is written here rather than taken from a crate because the import needs only this, and
//! because it must report positions the way an operator finds them: by row, counting records as
//! a spreadsheet counts rows (a quoted field with a line break stays in one row), with the file's
//! line number as well. A UTF-8 byte-order mark (Excel writes one) is skipped; blank lines are
//! skipped but still counted as rows. A double quote inside an unquoted field is kept as it is,
//! as most spreadsheet programs do.

use std::fmt;

/// One record of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's row number, from 1 (the header, when the file has one).
    pub row: usize,
    /// The line of the file the record starts on, from 1.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// Why the file cannot be read as CSV at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// The row where the problem is.
    pub row: usize,
    /// The line where the problem is.
    pub line: usize,
    /// What is wrong, in English.
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} (line {}): {}", self.row, self.line, self.message)
    }
}

impl std::error::Error for CsvError {}

/// Parses the whole text into records, skipping blank lines.
///
/// # Errors
/// A quoted field that never closes, or a character other than a comma or a line break right
/// after a closing quote.
pub fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut row = 0;

    while chars.peek().is_some() {
        row += 1;
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        // Whether the current field was quoted; only its first character may open a quote.
        let mut at_field_start = true;
        loop {
            let Some(c) = chars.next() else {
                fields.push(std::mem::take(&mut field));
                break;
            };
            match c {
                '"' if at_field_start => {
                    let quote_line = line;
                    loop {
                        match chars.next() {
                            None => {
                                return Err(CsvError {
                                    row,
                                    line: quote_line,
                                    message: "a quoted field is never closed: a double quote \
                                              is missing"
                                        .to_owned(),
                                });
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some('\n') => {
                                line += 1;
                                field.push('\n');
                            }
                            Some(other) => field.push(other),
                        }
                    }
                    match chars.peek() {
                        None | Some(',' | '\n' | '\r') => {}
                        Some(other) => {
                            return Err(CsvError {
                                row,
                                line,
                                message: format!(
                                    "`{other}` follows a closing quote; a quoted field must \
                                     end at a comma or the end of the line"
                                ),
                            });
                        }
                    }
                    at_field_start = false;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\r' | '\n' => {
                    if c == '\r' && chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                other => {
                    field.push(other);
                    at_field_start = false;
                }
            }
        }
        let blank = fields.len() == 1 && fields[0].is_empty();
        if !blank {
            records.push(Record {
                row,
                line: start_line,
                fields,
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|record| record.fields)
            .collect()
    }

    #[test]
    fn plain_fields_split_on_commas_and_line_ends() {
        assert_eq!(
            fields("a,b,c\r\n1,,3\n"),
            vec![vec!["a", "b", "c"], vec!["1", "", "3"]]
        );
        assert_eq!(fields("a,b"), vec![vec!["a", "b"]]);
        assert_eq!(fields("a,"), vec![vec!["a", ""]]);
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        assert_eq!(
            fields("\"דנה קרמיקה בע\"\"מ\",\"x, y\",\"two\nlines\"\nnext,row,here\n"),
            vec![
                vec!["דנה קרמיקה בע\"מ", "x, y", "two\nlines"],
                vec!["next", "row", "here"],
            ]
        );
        assert_eq!(fields("\"\",b"), vec![vec!["", "b"]]);
    }

    #[test]
    fn rows_count_records_and_lines_count_lines() {
        let records = parse("h1,h2\n\"a\nb\",c\n\nd,e\n").unwrap();
        let positions: Vec<(usize, usize)> = records.iter().map(|r| (r.row, r.line)).collect();
        // The blank line is row 3 (skipped); the record after it is row 4 on line 5.
        assert_eq!(positions, vec![(1, 1), (2, 2), (4, 5)]);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(fields("\u{feff}a,b\n"), vec![vec!["a", "b"]]);
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_kept() {
        assert_eq!(fields("5\" pipe,b\n"), vec![vec!["5\" pipe", "b"]]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_naming_where_it_opened() {
        let error = parse("a,b\nc,\"never closed\nmore\n").unwrap_err();
        assert_eq!((error.row, error.line), (2, 2));
        assert!(error.message.contains("never closed"), "{error}");
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        let error = parse("\"a\"b,c\n").unwrap_err();
        assert_eq!(error.row, 1);
        assert!(
            error.to_string().contains("`b` follows a closing quote"),
            "{error}"
        );
    }
}
