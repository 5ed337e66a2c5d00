package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

// diff returns the differences between want and got as "path: want …, got …"
// lines. Times compare with Equal, nil and empty slices and maps compare
// equal (callers check non-nil-ness where the contract asks for it), and
// everything else compares with ==.
func diff(want, got any) []string {
	var out []string
	diffValue(&out, "", reflect.ValueOf(want), reflect.ValueOf(got))
	return out
}

func diffValue(out *[]string, path string, w, g reflect.Value) {
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() != g.IsValid() {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
		}
		return
	}
	if w.Type() != g.Type() {
		*out = append(*out, fmt.Sprintf("%s: want type %s, got %s", path, w.Type(), g.Type()))
		return
	}
	switch {
	case w.Type() == timeType:
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Equal(gt) {
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, wt.Format(time.RFC3339Nano), gt.Format(time.RFC3339Nano)))
		}
		return
	case w.Type() == bytesType:
		if !bytes.Equal(w.Bytes(), g.Bytes()) {
			*out = append(*out, fmt.Sprintf("%s: want %x, got %x", path, w.Bytes(), g.Bytes()))
		}
		return
	}
	switch w.Kind() {
	case reflect.Pointer, reflect.Interface:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
			}
			return
		}
		diffValue(out, path, w.Elem(), g.Elem())
	case reflect.Struct:
		for i := range w.NumField() {
			diffValue(out, path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
			return
		}
		for i := range w.Len() {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i))
		}
	case reflect.Map:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
			return
		}
		for _, k := range w.MapKeys() {
			gv := g.MapIndex(k)
			if !gv.IsValid() {
				*out = append(*out, fmt.Sprintf("%s[%v]: missing", path, k))
				continue
			}
			diffValue(out, fmt.Sprintf("%s[%v]", path, k), w.MapIndex(k), gv)
		}
	default:
		if w.Interface() != g.Interface() {
			*out = append(*out, fmt.Sprintf("%s: want %#v, got %#v", path, w, g))
		}
	}
}

// checkEqual fails t if got differs from want.
func checkEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(want, got); len(d) > 0 {
		t.Errorf("%s differs:", what)
		for _, l := range d {
			t.Errorf("  %s", l)
		}
	}
}

// checkAllSet fails t if some field of the struct *v (nested structs and
// pointers included) is zero, except the named top-level fields. It keeps
// the round-trip fixtures complete when a domain type grows a field.
func checkAllSet(t *testing.T, v any, except ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, e := range except {
		skip[e] = true
	}
	var walk func(path string, v reflect.Value, top bool)
	walk = func(path string, v reflect.Value, top bool) {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				t.Errorf("fixture field %s is nil", path)
				return
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct || v.Type() == timeType {
			if v.IsZero() || (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0 {
				t.Errorf("fixture field %s is zero: the round-trip test does not cover it", path)
			}
			return
		}
		for i := range v.NumField() {
			name := v.Type().Field(i).Name
			if top && skip[name] {
				continue
			}
			walk(path+"."+name, v.Field(i), false)
		}
	}
	walk(reflect.TypeOf(v).Elem().Name(), reflect.ValueOf(v), true)
}

// jsonRoundTrip returns m as it comes back from encoding/json: the form in
// which stores return AuditEvent.Details.
func jsonRoundTrip(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
