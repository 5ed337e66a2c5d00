package policy

import (
	"maps"
	"slices"
	"sync"

	"github.com/cedar-policy/cedar-go"

	"airlock"
)

// maxCached bounds each cache; a full cache is emptied and starts again,
// which keeps memory bounded whatever the callers send.
const maxCached = 4096

// boundedMap is a concurrent map emptied when it grows past maxCached. A
// plain map under a read-write lock: lookups take the read lock only, and
// keys are not boxed into interfaces (as sync.Map would).
type boundedMap[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (b *boundedMap[K, V]) load(k K) (V, bool) {
	b.mu.RLock()
	v, ok := b.m[k]
	b.mu.RUnlock()
	return v, ok
}

func (b *boundedMap[K, V]) store(k K, v V) {
	b.mu.Lock()
	if b.m == nil || len(b.m) >= maxCached {
		b.m = make(map[K]V)
	}
	b.m[k] = v
	b.mu.Unlock()
}

// cachedUser is a user entity with the inputs it was built from.
type cachedUser struct {
	name  string
	tier  airlock.Tier
	kind  airlock.UserKind
	roles []string
	e     cedar.Entity
}

// cachedResource is a resource entity with the inputs it was built from.
type cachedResource struct {
	tier   airlock.Tier
	labels map[string]string
	e      cedar.Entity
}

// recordKey is the comparable set of facts a cached record is built from.
type recordKey interface {
	comparable
	record(needs) cedar.Record
}

// recordCache maps facts to the Cedar record built from them, stored as a
// cedar.Value so that putting it in the context boxes nothing.
type recordCache[K recordKey] struct{ m boundedMap[K, cedar.Value] }

func (c *recordCache[K]) get(k K, n needs) cedar.Value {
	if r, ok := c.m.load(k); ok {
		return r
	}
	r := cedar.Value(k.record(n))
	c.m.store(k, r)
	return r
}

// entityCache keeps the Cedar values that rarely change between decisions
// (the user and resource entities, the action, device, session and signal
// records), so that Decide builds only the context itself per request. An
// entry is used only when every input it was built from equals the
// request's. It belongs to one Set, whose policies fix which attributes are
// built.
type entityCache struct {
	users     boundedMap[string, *cachedUser]
	resources boundedMap[string, *cachedResource]
	actions   recordCache[actionKey]
	devices   recordCache[deviceKey]
	sessions  recordCache[sessionKey]
	signals   recordCache[signalsKey]
}

func (c *entityCache) user(in *Input, n needs) cedar.Entity {
	s := &in.Subject
	if u, ok := c.users.load(s.ID); ok && u.name == s.Name && u.tier == s.Tier && u.kind == s.Kind && slices.Equal(u.roles, s.Roles) {
		return u.e
	}
	e := userEntity(in, n)
	c.users.store(s.ID, &cachedUser{name: s.Name, tier: s.Tier, kind: s.Kind, roles: slices.Clone(s.Roles), e: e})
	return e
}

func (c *entityCache) resource(in *Input, n needs) cedar.Entity {
	r := &in.Resource
	if x, ok := c.resources.load(r.Name); ok && x.tier == r.Tier && maps.Equal(x.labels, r.Labels) {
		return x.e
	}
	e := resourceEntity(in, n)
	c.resources.store(r.Name, &cachedResource{tier: r.Tier, labels: maps.Clone(r.Labels), e: e})
	return e
}
