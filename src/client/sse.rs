//! An incremental parser for a Server-Sent Events stream: the one the client reads OpenAI chat
//! streams and ptr-server's named refinement events with.
//!
//! Network reads split the stream at arbitrary byte offsets — mid-line, even mid UTF-8
//! character — so the parser buffers bytes and only looks at complete lines. It follows the SSE
//! rules that matter here: `data:` lines of one event are joined with `\n` and dispatched, with
//! the event's `event:` name, at the blank line that ends the event; comment lines (`:`) and
//! other fields (`id:`, `retry:`) are ignored; `\r\n` line endings are accepted.

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event has one.
    pub event: Option<String>,
    /// The (joined) `data:` payload.
    pub data: String,
}

impl SseEvent {
    /// Whether this is the `data: [DONE]` sentinel that OpenAI-compatible servers send last.
    pub fn is_done(&self) -> bool {
        self.data.trim() == "[DONE]"
    }
}

/// Buffers raw stream bytes and yields complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes after the last complete line.
    pending: Vec<u8>,
    /// The `event:` name of the event in progress.
    event: Option<String>,
    /// `data:` lines of the event in progress.
    data: Option<String>,
}

/// Every event of a whole stream body.
pub fn parse(body: &str) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = parser.push(body.as_bytes());
    events.extend(parser.finish());
    events
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
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            // Comments (":keep-alive", an empty field name) and other fields carry nothing here.
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            events.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: s.to_owned(),
        }
    }

    #[test]
    fn parses_events_and_done() {
        let mut p = SseParser::new();
        let events = p.push(b"data: {\"a\":1}\n\ndata:{\"b\":2}\n\ndata: [DONE]\n\n");
        assert_eq!(
            events,
            vec![data("{\"a\":1}"), data("{\"b\":2}"), data("[DONE]")]
        );
        assert!(events[2].is_done() && !events[0].is_done());
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
    fn keeps_event_names_ignores_comments_and_accepts_crlf() {
        let events =
            parse(": keep-alive\r\n\r\nevent: round.delta\r\nid: 7\r\ndata: hi\r\n\r\ndata: x\n\n");
        let named = SseEvent {
            event: Some("round.delta".into()),
            data: "hi".into(),
        };
        assert_eq!(events, vec![named, data("x")], "a name lasts one event");
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
        assert_eq!(p.finish(), vec![data("[DONE]")]);
    }
}
