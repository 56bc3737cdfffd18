//! An incremental parser for the `data:` payloads of a Server-Sent Events stream.
//!
//! Network reads split the stream at arbitrary byte offsets — mid-line, even mid
//! UTF-8 character — so the parser buffers bytes and only looks at complete
//! lines. It follows the SSE rules that matter for OpenAI-style streams: `data:`
//! lines of one event are joined with `\n` and dispatched at the blank line that
//! ends the event; comment lines (`:`) and other fields (`event:`, `id:`, …) are
//! ignored; `\r\n` line endings are accepted. The payload `[DONE]` ends the stream.

/// One dispatched SSE event, as far as the benchmark cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseEvent {
    /// The (joined) `data:` payload of one event.
    Data(String),
    /// The `data: [DONE]` sentinel that OpenAI-compatible servers send last.
    Done,
}

/// Buffers raw stream bytes and yields complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes after the last complete line.
    pending: Vec<u8>,
    /// `data:` lines of the event in progress.
    data: Option<String>,
}

impl SseParser {
    /// Creates a parser with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one network read and returns the events it completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(newline) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            let line = String::from_utf8_lossy(&line[..newline]);
            self.feed_line(line.strip_suffix('\r').unwrap_or(&line), &mut events);
        }
        events
    }

    /// Flushes what is left when the stream closes: a last line without a newline
    /// and an event whose terminating blank line never came.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let line = String::from_utf8_lossy(&rest);
            self.feed_line(line.strip_suffix('\r').unwrap_or(&line), &mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn feed_line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        let Some(value) = line.strip_prefix("data:") else {
            // Comments (":keep-alive") and other fields carry nothing we measure.
            return;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => self.data = Some(value.to_owned()),
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        if let Some(data) = self.data.take() {
            if data.trim() == "[DONE]" {
                events.push(SseEvent::Done);
            } else {
                events.push(SseEvent::Data(data));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> SseEvent {
        SseEvent::Data(s.to_owned())
    }

    #[test]
    fn parses_events_and_done() {
        let mut p = SseParser::new();
        let events = p.push(b"data: {\"a\":1}\n\ndata:{\"b\":2}\n\ndata: [DONE]\n\n");
        assert_eq!(
            events,
            vec![data("{\"a\":1}"), data("{\"b\":2}"), SseEvent::Done]
        );
        assert!(p.finish().is_empty());
    }

    #[test]
    fn joins_an_event_split_across_reads() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: {\"choi").is_empty());
        assert!(
            p.push(b"ces\":[]}\n").is_empty(),
            "event not ended by a blank line yet"
        );
        assert_eq!(p.push(b"\ndata: x"), vec![data("{\"choices\":[]}")]);
        assert_eq!(p.push(b"\n\n"), vec![data("x")]);
    }

    #[test]
    fn keeps_a_utf8_character_split_across_reads() {
        let mut p = SseParser::new();
        let bytes = "data: é\n\n".as_bytes();
        // 'é' is two bytes; cut between them.
        assert!(p.push(&bytes[..7]).is_empty());
        assert_eq!(p.push(&bytes[7..]), vec![data("é")]);
    }

    #[test]
    fn ignores_comments_and_other_fields_and_accepts_crlf() {
        let mut p = SseParser::new();
        let events = p.push(b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata: hi\r\n\r\n");
        assert_eq!(events, vec![data("hi")]);
    }

    #[test]
    fn joins_multi_line_data() {
        let mut p = SseParser::new();
        assert_eq!(p.push(b"data: a\ndata: b\n\n"), vec![data("a\nb")]);
    }

    #[test]
    fn finish_flushes_an_unterminated_event() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: {\"x\":1}\n\ndata: [DONE]").len() == 1);
        assert_eq!(p.finish(), vec![SseEvent::Done]);
    }
}
