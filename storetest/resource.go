package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"airlock"
)

func fullResource(name string) *airlock.Resource {
	return &airlock.Resource{
		Name:      name,
		Tier:      1,
		Labels:    map[string]string{"env": "prod", "owner": "db-team", "ünïcode": "☃"},
		CreatedAt: at(0).In(elsewhere),
		UpdatedAt: at(time.Second),
		Version:   3,
	}
}

func testResources(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		r := fullResource("vault-prod")
		checkAllSet(t, r)
		must(t, "CreateResource", s.CreateResource(ctx, r))
		got, err := s.FindResourceByName(ctx, r.Name)
		must(t, "FindResourceByName", err)
		checkEqual(t, "resource", r, got)
	})

	t.Run("empty-labels", func(t *testing.T) {
		s := open(t)
		r := &airlock.Resource{Name: "grafana", Tier: 2, CreatedAt: t0, UpdatedAt: t0}
		must(t, "CreateResource", s.CreateResource(ctx, r))
		got, err := s.FindResourceByName(ctx, r.Name)
		must(t, "FindResourceByName", err)
		checkEqual(t, "resource", r, got)
		if got.Labels == nil || len(got.Labels) != 0 {
			t.Errorf("Labels = %#v, want empty non-nil", got.Labels)
		}
	})

	t.Run("list-and-delete", func(t *testing.T) {
		s := open(t)
		empty, err := s.ListResources(ctx)
		must(t, "ListResources", err)
		if empty == nil || len(empty) != 0 {
			t.Errorf("ListResources on an empty store = %#v, want empty non-nil", empty)
		}
		for _, n := range []string{"payments", "ci", "vault-prod"} {
			must(t, "CreateResource", s.CreateResource(ctx, fullResource(n)))
		}
		list, err := s.ListResources(ctx)
		must(t, "ListResources", err)
		var names []string
		for _, r := range list {
			names = append(names, r.Name)
		}
		checkEqual(t, "ListResources order", []string{"ci", "payments", "vault-prod"}, names)
		checkEqual(t, "listed resource", fullResource("ci"), list[0])
		must(t, "DeleteResource", s.DeleteResource(ctx, "payments"))
		_, err = s.FindResourceByName(ctx, "payments")
		wantCode(t, "FindResourceByName after delete", err, airlock.ENOTFOUND)
		wantCode(t, "DeleteResource twice", s.DeleteResource(ctx, "payments"), airlock.ENOTFOUND)
	})

	t.Run("fail-duplicate-and-missing", func(t *testing.T) {
		s := open(t)
		must(t, "CreateResource", s.CreateResource(ctx, fullResource("ci")))
		dup := fullResource("ci")
		dup.Tier = 0
		wantCode(t, "CreateResource (duplicate)", s.CreateResource(ctx, dup), airlock.ECONFLICT)
		got, err := s.FindResourceByName(ctx, "ci")
		must(t, "FindResourceByName", err)
		checkEqual(t, "original resource", fullResource("ci"), got)
		_, err = s.FindResourceByName(ctx, "nope")
		wantCode(t, "FindResourceByName (missing)", err, airlock.ENOTFOUND)
		missing := fullResource("nope")
		wantCode(t, "UpdateResource (missing)", s.UpdateResource(ctx, missing), airlock.ENOTFOUND)
	})

	t.Run("update-ignores-immutable", func(t *testing.T) {
		s := open(t)
		r := fullResource("ci")
		r.Version = 0
		must(t, "CreateResource", s.CreateResource(ctx, r))
		upd := *r
		upd.CreatedAt = at(time.Hour)
		upd.Tier = 0
		upd.Labels = map[string]string{"env": "staging"}
		upd.UpdatedAt = at(time.Minute)
		must(t, "UpdateResource", s.UpdateResource(ctx, &upd))
		got, err := s.FindResourceByName(ctx, "ci")
		must(t, "FindResourceByName", err)
		want := upd
		want.CreatedAt = r.CreatedAt
		checkEqual(t, "updated resource", &want, got)
	})

	testVersioning(t, open, versionOps[*airlock.Resource]{
		what: "resource",
		fixture: func() *airlock.Resource {
			r := fullResource("vault-prod")
			r.Version = 0
			return r
		},
		other: func() *airlock.Resource {
			r := fullResource("grafana")
			r.Version = 0
			return r
		},
		create: func(s airlock.Store, r *airlock.Resource) error { return s.CreateResource(context.Background(), r) },
		find: func(s airlock.Store, name string) (*airlock.Resource, error) {
			return s.FindResourceByName(context.Background(), name)
		},
		update: func(s airlock.Store, r *airlock.Resource) error { return s.UpdateResource(context.Background(), r) },
		copy: func(r *airlock.Resource) *airlock.Resource {
			c := *r
			return &c
		},
		id:      func(r *airlock.Resource) string { return r.Name },
		version: func(r *airlock.Resource) *int64 { return &r.Version },
		mutate: func(r *airlock.Resource, i int) {
			r.Tier = airlock.Tier(i % 3)
			r.Labels = map[string]string{"rev": fmt.Sprint(i)}
			r.UpdatedAt = at(time.Duration(i) * time.Second)
		},
	})
}
