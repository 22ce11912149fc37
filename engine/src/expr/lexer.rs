//! Splits expression text into tokens, each with its byte span so that syntax errors can quote
//! the text around the offending token the way DynamoDB does.
//!
//! The lexer never fails: a character that starts no token becomes a one-character
//! [`TokenKind::Unknown`] token, and the parser reports it as a syntax error where it meets it.

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: `[A-Za-z][A-Za-z0-9_]*`. Keywords (`AND`, `SET`, …), function names and
    /// attribute names are all words; the parser tells them apart by position.
    Word(String),
    /// `#name`: an expression attribute name placeholder, including the `#`.
    NameRef(String),
    /// `:name`: an expression attribute value placeholder, including the `:`.
    ValueRef(String),
    /// A run of decimal digits (list indexes).
    Digits(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// A character that starts no token.
    Unknown(char),
    /// The end of the text.
    Eof,
}

/// One token and where it is in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Token {
    /// The token as DynamoDB quotes it in a syntax error.
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        match self.kind {
            TokenKind::Eof => "<EOF>",
            _ => &source[self.start..self.end],
        }
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_word_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Tokenizes `source`; the last token is always [`TokenKind::Eof`].
pub fn tokenize(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    // Runs while characters remain; every arm advances `pos` by at least one character.
    while let Some(c) = source[pos..].chars().next() {
        let start = pos;
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            pos += 1;
            continue;
        }
        let run_end = |from: usize| -> usize {
            source[from..].char_indices().find(|&(_, ch)| !is_word_part(ch)).map_or(source.len(), |(i, _)| from + i)
        };
        let next_byte = bytes.get(pos + 1).copied();
        let (kind, end) = match c {
            '#' | ':' => {
                let end = run_end(pos + 1);
                if end == pos + 1 {
                    (TokenKind::Unknown(c), pos + 1)
                } else if c == '#' {
                    (TokenKind::NameRef(source[start..end].to_string()), end)
                } else {
                    (TokenKind::ValueRef(source[start..end].to_string()), end)
                }
            }
            c if is_word_start(c) => {
                let end = run_end(pos);
                (TokenKind::Word(source[start..end].to_string()), end)
            }
            c if c.is_ascii_digit() => {
                let end = source[pos..]
                    .char_indices()
                    .find(|&(_, ch)| !ch.is_ascii_digit())
                    .map_or(source.len(), |(i, _)| pos + i);
                (TokenKind::Digits(source[start..end].to_string()), end)
            }
            '(' => (TokenKind::LParen, pos + 1),
            ')' => (TokenKind::RParen, pos + 1),
            '[' => (TokenKind::LBracket, pos + 1),
            ']' => (TokenKind::RBracket, pos + 1),
            ',' => (TokenKind::Comma, pos + 1),
            '.' => (TokenKind::Dot, pos + 1),
            '+' => (TokenKind::Plus, pos + 1),
            '-' => (TokenKind::Minus, pos + 1),
            '=' => (TokenKind::Eq, pos + 1),
            '<' => match next_byte {
                Some(b'>') => (TokenKind::Ne, pos + 2),
                Some(b'=') => (TokenKind::Le, pos + 2),
                _ => (TokenKind::Lt, pos + 1),
            },
            '>' => match next_byte {
                Some(b'=') => (TokenKind::Ge, pos + 2),
                _ => (TokenKind::Gt, pos + 1),
            },
            other => (TokenKind::Unknown(other), pos + other.len_utf8()),
        };
        debug_assert!(end > start, "every token consumes input");
        tokens.push(Token { kind, start, end });
        pos = end;
    }
    tokens.push(Token { kind: TokenKind::Eof, start: source.len(), end: source.len() });
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn words_placeholders_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds("a.b[12] <> :v AND #n>=:w_1"),
            vec![
                Word("a".into()),
                Dot,
                Word("b".into()),
                LBracket,
                Digits("12".into()),
                RBracket,
                Ne,
                ValueRef(":v".into()),
                Word("AND".into()),
                NameRef("#n".into()),
                Ge,
                ValueRef(":w_1".into()),
                Eof
            ]
        );
        assert_eq!(kinds("<=<>< >="), vec![Le, Ne, Lt, Ge, Eof]);
    }

    #[test]
    fn unknown_characters_become_tokens() {
        use TokenKind::*;
        assert_eq!(kinds("_a"), vec![Unknown('_'), Word("a".into()), Eof]);
        assert_eq!(kinds("# :"), vec![Unknown('#'), Unknown(':'), Eof]);
        assert_eq!(kinds("é!"), vec![Unknown('é'), Unknown('!'), Eof]);
    }

    #[test]
    fn spans_and_text() {
        let source = "ab = :v";
        let tokens = tokenize(source);
        assert_eq!(tokens[0].text(source), "ab");
        assert_eq!(tokens[2].text(source), ":v");
        assert_eq!(tokens[3].text(source), "<EOF>");
        assert_eq!((tokens[3].start, tokens[3].end), (7, 7));
    }
}
