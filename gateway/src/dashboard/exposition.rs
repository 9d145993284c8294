//! Reads back the Prometheus text exposition of the gateway's own registry,
//! so the dashboard shows exactly what Prometheus scrapes, including families
//! registered by code it does not know about (breakers). Hand-written: the
//! format subset `prometheus-client` writes is a few lines to parse.

/// One sample line: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of `text`; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find("=\"")?;
            let key = rest[..eq].to_owned();
            rest = &rest[eq + 2..];
            // Values may contain `}` and `,` (route templates); only an
            // unescaped quote ends them.
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.push((key, value));
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_with_braces_are_read_whole() {
        let samples = parse(
            "# TYPE x counter\n\
             http_server_requests_total{route=\"/api/v1/articles/{id}\",method=\"GET\",status=\"200\"} 7\n\
             http_server_request_duration_seconds_bucket{le=\"+Inf\",route=\"/a\",method=\"GET\"} 3\n\
             process_cpu_seconds_total 1.5\n# EOF\n",
        );
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].label("route"), Some("/api/v1/articles/{id}"));
        assert_eq!(samples[0].label("status"), Some("200"));
        assert!((samples[0].value - 7.0).abs() < f64::EPSILON);
        assert_eq!(samples[1].label("le"), Some("+Inf"));
        assert_eq!(samples[2].name, "process_cpu_seconds_total");
    }

    #[test]
    fn escaped_quotes_stay_inside_a_value() {
        let samples = parse("m{a=\"x\\\"y\"} 1");
        assert_eq!(samples[0].label("a"), Some("x\"y"));
    }
}
