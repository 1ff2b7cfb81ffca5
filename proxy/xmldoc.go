package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// The documents a rule must judge (ACLs, public access blocks, the keys of
// a DeleteObjects) are read strictly: one root of the expected name and
// nothing after it, no DTD, each element where the schema has it and as
// often. encoding/xml alone keeps the last of repeated elements and stops
// after the first root; an upstream that reads the first, or the second
// root, would then act on what was never judged.

// xmlNode is an element: its local name, its attributes' values by local
// name, its text and its children in order.
type xmlNode struct {
	name     string
	attrs    map[string]string
	text     strings.Builder
	children []*xmlNode
}

var errDoc = errors.New("document outside the schema")

// maxDocNodes bounds the elements of a judged document (1,000 objects of a
// DeleteObjects with their fields fit).
const maxDocNodes = 20_000

func parseXMLDoc(doc []byte) (*xmlNode, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var (
		root  *xmlNode
		stack []*xmlNode
		n     int
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errDoc
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if n++; n > maxDocNodes || root != nil && len(stack) == 0 {
				return nil, errDoc // too large, or a second root
			}
			el := &xmlNode{name: t.Name.Local, attrs: map[string]string{}}
			for _, a := range t.Attr {
				el.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				root = el
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, el)
			}
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, errDoc // text outside the root
				}
				continue
			}
			stack[len(stack)-1].text.Write(t)
		case xml.Directive:
			return nil, errDoc // DTDs and entities: not in S3's documents
		}
	}
	if root == nil {
		return nil, errDoc
	}
	return root, nil
}

// fields checks n's children against a schema: each name with the most
// times it may appear (0: any number), required ones at least once; any
// other child is outside the schema. It returns the children by name.
func (n *xmlNode) fields(schema map[string]int, required ...string) (map[string][]*xmlNode, error) {
	out := map[string][]*xmlNode{}
	for _, c := range n.children {
		most, ok := schema[c.name]
		if !ok {
			return nil, errDoc
		}
		out[c.name] = append(out[c.name], c)
		if most > 0 && len(out[c.name]) > most {
			return nil, errDoc
		}
	}
	for _, r := range required {
		if len(out[r]) == 0 {
			return nil, errDoc
		}
	}
	return out, nil
}

func (n *xmlNode) value() string { return strings.TrimSpace(n.text.String()) }
