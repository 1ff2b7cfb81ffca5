package proxy

// The tokens of a listing page: the byte scanner of the subset S3
// services send, and encoding/xml for everything else (listing.go).

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// xmlTokens reads tokens with encoding/xml: any well-formed XML.
type xmlTokens struct{ dec *xml.Decoder }

func newXMLTokens(body []byte) *xmlTokens {
	return &xmlTokens{dec: xml.NewDecoder(bytes.NewReader(body))}
}

func (x *xmlTokens) next() (token, error) {
	before := x.dec.InputOffset()
	tok, err := x.dec.Token()
	if err != nil {
		return token{}, err
	}
	t := token{before: before, after: x.dec.InputOffset()}
	switch tt := tok.(type) {
	case xml.StartElement:
		t.kind, t.name = tokStart, []byte(tt.Name.Local)
	case xml.EndElement:
		t.kind, t.name = tokEnd, []byte(tt.Name.Local)
	case xml.CharData:
		t.kind, t.text = tokText, tt
	}
	return t, nil
}

// errNotSimple sends a page to encoding/xml.
var errNotSimple = errors.New("listing: not in the subset the scanner reads")

// scanner reads the common subset of XML straight from the bytes: start
// tags (their attributes checked, not kept), end tags matched against the
// open ones, text with the five named entities and character references,
// and processing instructions. Anything else, and anything encoding/xml
// would refuse, is errNotSimple.
type scanner struct {
	body    []byte
	pos     int
	open    [][]byte // names of the open elements
	text    []byte   // reused for decoded text
	ended   bool     // the root element has closed
	pending *token   // the end of an empty-element tag, <Name/>
}

func (s *scanner) next() (token, error) {
	if t := s.pending; t != nil {
		s.pending = nil
		return *t, nil
	}
	b := s.body
	if s.pos >= len(b) {
		if len(s.open) > 0 {
			return token{}, errNotSimple // unclosed: let encoding/xml say so
		}
		return token{}, io.EOF
	}
	start := s.pos
	if b[start] != '<' {
		end := bytes.IndexByte(b[start:], '<')
		if end < 0 {
			end = len(b)
		} else {
			end += start
		}
		raw := b[start:end]
		if len(s.open) == 0 {
			// Outside the root only white space is XML.
			if len(bytes.TrimLeft(raw, " \t\n")) > 0 {
				return token{}, errNotSimple
			}
		}
		text, ok := s.decode(raw)
		if !ok {
			return token{}, errNotSimple
		}
		s.pos = end
		return token{kind: tokText, text: text, before: int64(start), after: int64(end)}, nil
	}
	if start+1 >= len(b) {
		return token{}, errNotSimple
	}
	switch b[start+1] {
	case '?':
		// <?target ...?>, the target a name: anything else is left to
		// encoding/xml.
		end := bytes.Index(b[start+2:], []byte("?>"))
		if end < 0 || !validName(b[start+2:start+2+nameLen(b[start+2:])]) {
			return token{}, errNotSimple
		}
		s.pos = start + 2 + end + 2
		pi := b[start:s.pos]
		if bytes.HasPrefix(pi, []byte("<?xml")) && !xmlDecl(pi) || slices.ContainsFunc(pi, notPlain) {
			return token{}, errNotSimple // encoding/xml checks the version, the encoding, the characters
		}
		return token{kind: tokOther, before: int64(start), after: int64(s.pos)}, nil
	case '!':
		return token{}, errNotSimple // comment, CDATA, DOCTYPE
	case '/':
		end := bytes.IndexByte(b[start:], '>')
		if end < 0 {
			return token{}, errNotSimple
		}
		name := bytes.TrimRight(b[start+2:start+end], " \t\n")
		if len(s.open) == 0 || !bytes.Equal(s.open[len(s.open)-1], name) {
			return token{}, errNotSimple
		}
		s.open = s.open[:len(s.open)-1]
		if len(s.open) == 0 {
			s.ended = true
		}
		s.pos = start + end + 1
		return token{kind: tokEnd, name: localName(name), before: int64(start), after: int64(s.pos)}, nil
	}
	if s.ended {
		return token{}, errNotSimple // a second root
	}
	// A start tag: the name, then attributes up to '>' or "/>".
	i := start + 1
	i += nameLen(b[i:])
	if i >= len(b) || !validName(b[start+1:i]) || !(b[i] == '>' || b[i] == '/' || b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		return token{}, errNotSimple
	}
	name := b[start+1 : i]
	// Attributes: name="value" or name='value', values without '<', '&'
	// or bytes outside ASCII; then '>' or "/>".
	selfClosing := false
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return token{}, errNotSimple
		}
		if b[i] == '>' {
			break
		}
		if b[i] == '/' {
			if i+1 >= len(b) || b[i+1] != '>' {
				return token{}, errNotSimple
			}
			selfClosing, i = true, i+1
			break
		}
		n := nameLen(b[i:])
		if !validName(b[i : i+n]) {
			return token{}, errNotSimple
		}
		i = skipSpace(b, i+n)
		if i >= len(b) || b[i] != '=' {
			return token{}, errNotSimple
		}
		i = skipSpace(b, i+1)
		if i >= len(b) || b[i] != '"' && b[i] != '\'' {
			return token{}, errNotSimple
		}
		quote := b[i]
		end := bytes.IndexByte(b[i+1:], quote)
		if end < 0 || slices.ContainsFunc(b[i+1:i+1+end], func(c byte) bool { return c == '<' || c == '&' || notPlain(c) }) {
			return token{}, errNotSimple
		}
		i += 1 + end + 1
		if i < len(b) && !(b[i] == '>' || b[i] == '/' || b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
			return token{}, errNotSimple // attributes run together
		}
	}
	s.pos = i + 1
	t := token{kind: tokStart, name: localName(name), before: int64(start), after: int64(s.pos)}
	if selfClosing {
		// <Name/>: a start, then an end that takes no bytes, as
		// encoding/xml gives them.
		s.pending = &token{kind: tokEnd, name: t.name, before: t.after, after: t.after}
		if len(s.open) == 0 {
			s.ended = true
		}
		return t, nil
	}
	s.open = append(s.open, name)
	return t, nil
}

// isNameByte reports the ASCII bytes of XML names; a name with others
// goes to encoding/xml.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':'
}

// notPlain reports the bytes the scanner leaves to encoding/xml in tags:
// beyond ASCII, and control characters but tab and line feed.
func notPlain(c byte) bool { return c >= 0x80 || c < 0x20 && c != '\t' && c != '\n' }

// xmlDecl reports the XML declarations S3 services send.
func xmlDecl(pi []byte) bool {
	switch string(pi) {
	case `<?xml version="1.0"?>`, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="utf-8"?>`:
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		i++
	}
	return i
}

func nameLen(b []byte) int {
	n := 0
	for n < len(b) && isNameByte(b[n]) {
		n++
	}
	return n
}

// validName reports a name the scanner reads as encoding/xml does: it
// starts with a letter or '_', and has no colon or one with text on both
// sides (prefix:local).
func validName(name []byte) bool {
	if len(name) == 0 || !('a' <= name[0] && name[0] <= 'z' || 'A' <= name[0] && name[0] <= 'Z' || name[0] == '_') {
		return false
	}
	i := bytes.IndexByte(name, ':')
	return i < 0 || i < len(name)-1 && bytes.IndexByte(name[i+1:], ':') < 0
}

func localName(name []byte) []byte {
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// decode returns the text of raw with its entities replaced; ok is false
// for what the scanner leaves to encoding/xml (carriage returns, which XML
// turns into line feeds, other control characters, other entities).
func (s *scanner) decode(raw []byte) ([]byte, bool) {
	var special, high, bracket bool
	for _, c := range raw {
		switch {
		case c >= 0x80:
			high = true
		case c == '&' || c < 0x20 && c != '\t' && c != '\n':
			special = true
		case c == ']':
			bracket = true
		}
	}
	if bracket && bytes.Contains(raw, []byte("]]>")) || high && !validUTF8Text(raw) {
		return nil, false
	}
	if !special {
		return raw, true
	}
	out := s.text[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c < 0x20 && c != '\t' && c != '\n' {
			return nil, false
		}
		if c != '&' {
			out = append(out, c)
			continue
		}
		end := bytes.IndexByte(raw[i:], ';')
		if end < 0 {
			return nil, false
		}
		ref := string(raw[i+1 : i+end])
		i += end
		switch ref {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "apos":
			out = append(out, '\'')
		case "quot":
			out = append(out, '"')
		default:
			r, ok := charRef(ref)
			if !ok {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
		}
	}
	s.text = out
	return out, true
}

// validUTF8Text reports UTF-8 whose characters XML allows (encoding/xml
// refuses the others).
func validUTF8Text(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 || !xmlChar(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// charRef reads "#34" or "#x22"; ok is false for anything else and for
// characters XML does not allow.
func charRef(ref string) (rune, bool) {
	num, ok := strings.CutPrefix(ref, "#")
	if !ok || num == "" {
		return 0, false
	}
	base := 10
	if h, ok := strings.CutPrefix(num, "x"); ok {
		num, base = h, 16
	}
	if num == "" || num[0] == '+' || num[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(num, base, 32)
	if err != nil {
		return 0, false
	}
	r := rune(n)
	return r, xmlChar(r)
}

// lookupPage reads the index entries that sort with the page's missing
// objects: one listing of the index, a few pages at most.
