package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkAppend measures appends of one row each from 1, 8 and 32 concurrent callers (one
// chain, one lock, group commit):
//
//	go test -run '^$' -bench Append -benchtime 2000x ./pkg/audit/
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			_, l := migrated(b)
			ctx := context.Background()
			var wg sync.WaitGroup
			next := make(chan struct{})
			go func() {
				for range b.N {
					next <- struct{}{}
				}
				close(next)
			}()
			b.ResetTimer()
			for range callers {
				wg.Go(func() {
					for range next {
						if err := l.Append(ctx, entry("/x.v1.S/Get", uuid.NewString())); err != nil {
							b.Error(err)
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
