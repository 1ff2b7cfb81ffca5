package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walker goes over the YAML node tree along the Config type before it is
// decoded: it expands ${VAR} in scalar values, rejects unknown fields and
// values of the wrong shape, and remembers each field's line.
type walker struct {
	file    string
	lookup  func(string) (string, bool)
	errs    []error
	fromEnv map[string]string
	lines   map[string]int
	seen    map[seenKey]bool // (node, type) pairs already walked: aliases are walked once
}

type seenKey struct {
	n *yaml.Node
	t reflect.Type
}

func newWalker(file string, lookup func(string) (string, bool)) *walker {
	return &walker{
		file:    file,
		lookup:  lookup,
		fromEnv: map[string]string{},
		lines:   map[string]int{},
		seen:    map[seenKey]bool{},
	}
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) walkDocument(doc *yaml.Node) {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return
		}
		doc = doc.Content[0]
	}
	w.walk(doc, reflect.TypeFor[Config](), "")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	k := seenKey{n, t}
	if w.seen[k] {
		return
	}
	w.seen[k] = true
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return // decodes to the zero value
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.errorf(n, path, "expected a mapping, found %s", kindName(n))
			return
		}
		w.walkMapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n, path, "expected a list, found %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			w.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			w.errorf(n, path, "expected a single value, found %s", kindName(n))
			return
		}
		w.expandScalar(n, t, path)
	default:
		panic("config: walker: unhandled field type " + t.String())
	}
}

func (w *walker) walkMapping(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			// <<: *anchor, or <<: [*a, *b]
			for val.Kind == yaml.AliasNode && val.Alias != nil {
				val = val.Alias
			}
			if val.Kind == yaml.SequenceNode {
				for _, v := range val.Content {
					w.walk(v, t, path)
				}
			} else {
				w.walk(val, t, path)
			}
			continue
		}
		if key.Kind != yaml.ScalarNode {
			w.errorf(key, path, "a field name must be a single value, found %s", kindName(key))
			continue
		}
		p := key.Value
		if path != "" {
			p = path + "." + key.Value
		}
		f, ok := fields[key.Value]
		if !ok {
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			sort.Strings(names)
			w.errorf(key, p, "unknown field %q (known: %s)", key.Value, strings.Join(names, ", "))
			continue
		}
		w.lines[p] = key.Line
		w.walk(val, f, p)
	}
}

// yamlFields maps the yaml names of t's fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func (w *walker) expandScalar(n *yaml.Node, t reflect.Type, path string) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	out, err := expand(n.Value, w.lookup)
	if err != "" {
		w.errorf(n, path, "%s", err)
		return
	}
	w.fromEnv[path] = n.Value
	n.Value = out
	if t.Kind() == reflect.String {
		// Whatever the variable holds ("null", "~", "123") is a string.
		n.Tag = "!!str"
	} else {
		// Let the decoder resolve the expanded value ("true") afresh.
		n.Tag = ""
		n.Style = 0
	}
}

// expand replaces each ${NAME} in s with lookup(NAME). "$$" and a "$" that
// does not start "${" are kept as they are. It returns a message (never
// holding a value) on a missing variable or a malformed reference.
func expand(s string, lookup func(string) (string, bool)) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteString("$$")
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", "unterminated ${ (write $$ to keep a literal $)"
		}
		name := s[i+2 : i+2+end]
		if !validEnvName(name) {
			return "", "malformed ${...}: a variable name is letters, digits and _ (write $$ to keep a literal $)"
		}
		v, ok := lookup(name)
		if !ok {
			return "", "environment variable " + name + " is not set"
		}
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), ""
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
