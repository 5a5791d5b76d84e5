package bench

import (
	"context"
	"testing"
)

// graphSteps is the size of the graphs the marshal benchmarks write.
const graphSteps = 5000

func BenchmarkMarshalLarder(b *testing.B)   { BenchMarshalLarder(b, graphSteps) }
func BenchmarkMarshalRawLLB(b *testing.B)   { BenchMarshalRaw(b, graphSteps) }
func BenchmarkRemarshalLarder(b *testing.B) { BenchRemarshalLarder(b, graphSteps) }
func BenchmarkRemarshalRawLLB(b *testing.B) { BenchRemarshalRaw(b, graphSteps) }

// The two benchmarks marshal the same definition, byte for byte.
func TestMarshalledGraphsAreTheSame(t *testing.T) {
	if err := SameDefinition(context.Background(), 50); err != nil {
		t.Fatal(err)
	}
}
