//! Multiple choice, shared by ARC, CommonsenseQA, MMLU and Winogrande: the prompt lays the
//! options out as letters A, B, C, … (whatever labels the file used), and the reply's letter is
//! read back by [`extract`].
//!
//! **Prompt**: the question, a blank line, one `X. text` line per option, a blank line, then
//! [`INSTRUCTION`].
//!
//! **Extraction**, first rule that decides wins:
//! 1. *A conclusion cue* ("answer", "correct option", "correct choice", "correct one", "best
//!    option", "I choose", "select"; case-insensitive). After the cue, filler is skipped (spaces,
//!    `*:-="'#`, and words such as "is", "would be", "the", "correct", "option", "letter"), then
//!    a letter must follow: `(B)`, `(b)`, `B)`, `B.`, `B` alone. The **last** cue that names
//!    anything decides, because a refined answer restates and corrects itself. A cue followed by
//!    two different letters joined by "and", "or", `,`, `/` or `&` ("The answer is (B) and (C)")
//!    is ambiguous: the reply is then unparseable (no letter), not the first of the two.
//! 2. *A leading letter*: the reply starts (after spaces and markdown) with a letter as above,
//!    e.g. "B) Planetary years…" or "C", and no explicit mark (rule 3) names another letter (a
//!    reply that lists the options is no answer).
//! 3. *Explicit marks anywhere*: `(B)`, `B)`, "option B", "choice B", or `B.`/`B:` at the start
//!    of a line. If they all name one letter, that letter; if they name several, the reply is
//!    ambiguous and unparseable.
//! 4. *Option text*: exactly one option's text occurs in the reply as a phrase (an option whose
//!    text lies inside another matching option's text does not count); else unparseable.
//!
//! **The article "A"**: a capital `A` followed by a space and a word is the English article
//! ("A planet that spins faster…"), not option A, unless the words after it are option A's own
//! text ("A Planetary density will decrease."). Lower-case letters are only read in parentheses.

/// What follows the options in the user turn.
pub const INSTRUCTION: &str =
    "Choose the correct option. End your answer with \"The answer is\" followed by the letter of the option.";

/// Phrases after which the chosen letter is expected (lower case).
const CUES: [&str; 9] = [
    "answer",
    "correct option",
    "correct choice",
    "correct one",
    "best option",
    "i choose",
    "i would choose",
    "i'd choose",
    "select",
];

/// Words skipped between a cue and its letter.
const FILLER_WORDS: [&str; 17] = [
    "is",
    "would",
    "be",
    "will",
    "should",
    "must",
    "therefore",
    "thus",
    "the",
    "correct",
    "right",
    "best",
    "final",
    "option",
    "choice",
    "letter",
    "so",
];

/// The letter of option `index` (0 → `A`).
pub fn letter(index: usize) -> char {
    char::from(b'A' + u8::try_from(index).expect("at most 26 options: this is a bug"))
}

/// The user turn for a question and its options.
pub fn prompt(question: &str, options: &[String]) -> String {
    let mut text = format!("{}\n\n", question.trim());
    for (i, option) in options.iter().enumerate() {
        text.push_str(&format!("{}. {}\n", letter(i), option.trim()));
    }
    text.push('\n');
    text.push_str(INSTRUCTION);
    text
}

/// Checks an option count: 2 to 26.
pub fn check_options(options: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        (2..=26).contains(&options.len()),
        "{} options (2 to 26 are supported)",
        options.len()
    );
    Ok(())
}

/// The letter a reply chooses among `options` (see the module docs for the rules).
pub fn extract(reply: &str, options: &[String]) -> Option<char> {
    let r = Reply::new(reply, options);
    match r.after_cues() {
        Named::Letter(l) => return Some(l),
        Named::Ambiguous => return None,
        Named::Nothing => {}
    }
    let mut marked = r.marks();
    marked.sort_unstable();
    marked.dedup();
    match r.named_at(r.skip(0, &[])) {
        // A leading letter stands unless other marks name other letters (a list of the options).
        Named::Letter(l) if marked.iter().all(|&m| m == l) => return Some(l),
        Named::Ambiguous => return None,
        _ => {}
    }
    match marked.as_slice() {
        [one] => Some(*one),
        [] => r.by_text(),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Named {
    Letter(char),
    Ambiguous,
    Nothing,
}

struct Reply<'a> {
    chars: Vec<char>,
    /// The reply lower-cased char by char, so that char positions agree with `chars`.
    lower: String,
    /// The byte offset in `lower` of each char, plus the end.
    offsets: Vec<usize>,
    options: &'a [String],
}

impl<'a> Reply<'a> {
    fn new(reply: &str, options: &'a [String]) -> Self {
        let chars: Vec<char> = reply.chars().collect();
        let lower: String = chars
            .iter()
            .map(|c| c.to_lowercase().next().unwrap_or(*c))
            .collect();
        let mut offsets: Vec<usize> = lower.char_indices().map(|(b, _)| b).collect();
        offsets.push(lower.len());
        Self {
            chars,
            lower,
            offsets,
            options,
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn word_char(&self, i: usize) -> bool {
        self.at(i).is_some_and(char::is_alphanumeric)
    }

    fn letter_index(&self, c: char) -> Option<usize> {
        let i = (c as usize).checked_sub('A' as usize)?;
        (c.is_ascii_uppercase() && i < self.options.len()).then_some(i)
    }

    /// The lower-cased text from char `i` on.
    fn lower_from(&self, i: usize) -> &str {
        &self.lower[self.offsets[i.min(self.chars.len())]..]
    }

    /// The lower-cased text before char `i`.
    fn lower_before(&self, i: usize) -> &str {
        &self.lower[..self.offsets[i]]
    }

    /// Skips spaces, markdown and the given filler words from `i`.
    fn skip(&self, mut i: usize, words: &[&str]) -> usize {
        loop {
            match self.at(i) {
                Some(c) if c.is_whitespace() || "*:-=\"'#`_>".contains(c) => i += 1,
                Some(c) if c.is_alphabetic() => {
                    let rest = self.lower_from(i);
                    let word: String = rest.chars().take_while(|c| c.is_alphabetic()).collect();
                    if !words.contains(&word.as_str()) {
                        return i;
                    }
                    i += word.chars().count();
                }
                _ => return i,
            }
        }
    }

    /// A letter token at `i`: `(B)`, `(b)`, or a capital standing alone (see the article rule).
    fn letter_at(&self, i: usize) -> Option<(char, usize)> {
        let c = self.at(i)?;
        if c == '(' && self.at(i + 2) == Some(')') {
            let l = self.at(i + 1)?.to_ascii_uppercase();
            return self.letter_index(l).map(|_| (l, i + 3));
        }
        self.letter_index(c)?;
        if (i > 0 && self.word_char(i - 1)) || self.word_char(i + 1) {
            return None;
        }
        if c == 'A'
            && self.at(i + 1) == Some(' ')
            && self.at(i + 2).is_some_and(char::is_alphabetic)
        {
            let option = self.options[0].trim().trim_end_matches('.').to_lowercase();
            return self
                .lower_from(i + 2)
                .starts_with(&option)
                .then_some((c, i + 1));
        }
        Some((c, i + 1))
    }

    /// What the text at `i` names: a letter, two letters joined by a conjunction, or nothing.
    fn named_at(&self, i: usize) -> Named {
        let Some((first, end)) = self.letter_at(i) else {
            return Named::Nothing;
        };
        let mut j = end;
        while self.at(j).is_some_and(|c| c == ')' || c == '*' || c == ' ') {
            j += 1;
        }
        let rest = self.lower_from(j);
        let joined = ["and ", "or ", ",", "/", "&"]
            .iter()
            .find(|w| rest.starts_with(*w));
        if let Some(w) = joined {
            let k = self.skip(j + w.chars().count(), &["option", "choice"]);
            if self.letter_at(k).is_some_and(|(second, _)| second != first) {
                return Named::Ambiguous;
            }
        }
        Named::Letter(first)
    }

    /// Rule 1: the last cue that names anything.
    fn after_cues(&self) -> Named {
        let mut ends: Vec<usize> = Vec::new();
        for cue in CUES {
            for (byte, _) in self.lower.match_indices(cue) {
                let start = self.offsets.partition_point(|&b| b < byte);
                let end = start + cue.chars().count();
                if (start == 0 || !self.word_char(start - 1)) && !self.word_char(end) {
                    ends.push(end);
                }
            }
        }
        ends.sort_unstable();
        ends.iter()
            .rev()
            .map(|&end| self.named_at(self.skip(end, &FILLER_WORDS)))
            .find(|named| *named != Named::Nothing)
            .unwrap_or(Named::Nothing)
    }

    /// Rule 3: every explicit mark in the reply, in order.
    fn marks(&self) -> Vec<char> {
        let mut found = Vec::new();
        let mut line_start = true;
        for (i, &c) in self.chars.iter().enumerate() {
            if c == '(' {
                found.extend(self.letter_at(i).map(|(l, _)| l));
            } else if self.letter_index(c).is_some()
                && (i == 0 || !self.word_char(i - 1))
                && !self.word_char(i + 1)
            {
                let closed = self.at(i + 1) == Some(')') && (i == 0 || self.at(i - 1) != Some('('));
                let listed = line_start && matches!(self.at(i + 1), Some('.' | ':'));
                let before = self.lower_before(i).trim_end();
                let named = before.ends_with("option") || before.ends_with("choice");
                if closed || listed || named {
                    found.push(c);
                }
            }
            line_start = c == '\n' || (line_start && (c.is_whitespace() || "*#>-".contains(c)));
        }
        found
    }

    /// Rule 4: the one option whose text occurs in the reply.
    fn by_text(&self) -> Option<char> {
        let texts: Vec<String> = self
            .options
            .iter()
            .map(|o| o.trim().trim_end_matches('.').to_lowercase())
            .collect();
        let occurs = |t: &str| {
            !t.is_empty()
                && self.lower.match_indices(t).any(|(b, _)| {
                    let before = self.lower[..b].chars().next_back();
                    let after = self.lower[b + t.len()..].chars().next();
                    !before.is_some_and(char::is_alphanumeric)
                        && !after.is_some_and(char::is_alphanumeric)
                })
        };
        let matching: Vec<usize> = (0..texts.len()).filter(|&i| occurs(&texts[i])).collect();
        let outer: Vec<usize> = matching
            .iter()
            .copied()
            .filter(|&i| {
                !matching
                    .iter()
                    .any(|&j| j != i && texts[j] != texts[i] && texts[j].contains(&texts[i]))
            })
            .collect();
        match outer.as_slice() {
            [one] => Some(letter(*one)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
