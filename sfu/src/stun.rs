//! Just enough STUN to route a binding request to the participant it is for: the local half of
//! its USERNAME attribute is the ufrag we gave that participant. Everything else about ICE is
//! str0m's.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// Whether the datagram looks like STUN (RFC 7983 demultiplexing: first byte 0..=3).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// Our ufrag from a binding request's `USERNAME` (`<our ufrag>:<their ufrag>`).
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(HEADER_LEN..HEADER_LEN + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        // Attributes are padded to four bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attributes = Vec::new();
        attributes.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attributes.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attributes.extend_from_slice(username.as_bytes());
        attributes.resize(attributes.len().div_ceil(4) * 4, 0);
        // A second attribute after the padded username.
        attributes.extend_from_slice(&[0x80, 0x29, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        let mut packet = vec![0x00, 0x01];
        packet.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        packet.extend_from_slice(&MAGIC_COOKIE);
        packet.extend_from_slice(&[7; 12]);
        packet.extend_from_slice(&attributes);
        packet
    }

    #[test]
    fn finds_our_ufrag_in_a_binding_request() {
        assert_eq!(local_ufrag(&binding_request("srvUfrag:cli")), Some("srvUfrag"));
        assert_eq!(local_ufrag(&binding_request("abcde:fghij")), Some("abcde"));
    }

    #[test]
    fn ignores_media_and_truncated_packets() {
        assert_eq!(local_ufrag(&[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        let mut truncated = binding_request("srv:cli");
        truncated.truncate(26);
        assert_eq!(local_ufrag(&truncated), None);
        assert_eq!(local_ufrag(&[]), None);
    }
}
