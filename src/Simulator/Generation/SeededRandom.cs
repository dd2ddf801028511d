namespace PumpFleet.Simulator.Generation;

/// <summary>
/// Derives independent, stable seeds for pumps and hubs from the fleet seed. string.GetHashCode is randomised
/// per process, so a SplitMix64 mix keeps runs reproducible across processes and machines.
/// </summary>
internal static class SeededRandom
{
    public static Random For(int fleetSeed, string stream, int index)
    {
        ulong h = (ulong)(uint)fleetSeed * 0x9E3779B97F4A7C15UL;
        foreach (var c in stream)
        {
            h = Mix(h ^ c);
        }

        h = Mix(h ^ (ulong)(uint)index);
        return new Random((int)(h & 0x7FFF_FFFF));
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static double Uniform(this Random r, double min, double max) => min + (r.NextDouble() * (max - min));

    public static bool Chance(this Random r, double p) => r.NextDouble() < p;

    /// <summary>Box–Muller; one draw per call keeps the stream simple to reason about.</summary>
    public static double Gaussian(this Random r, double mean, double sd)
    {
        var u1 = 1.0 - r.NextDouble();
        var u2 = r.NextDouble();
        return mean + (sd * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    /// <summary>Knuth's method; fine for the small means used here (a few events per interval).</summary>
    public static int Poisson(this Random r, double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }

        var limit = Math.Exp(-Math.Min(mean, 50));
        var k = 0;
        var p = r.NextDouble();
        while (p > limit)
        {
            k++;
            p *= r.NextDouble();
        }

        return k;
    }

    public static double Exponential(this Random r, double mean) => -mean * Math.Log(1.0 - r.NextDouble());

    public static T Pick<T>(this Random r, IReadOnlyList<T> items) => items[r.Next(items.Count)];

    public static T PickWeighted<T>(this Random r, IReadOnlyList<(T Item, double Weight)> items)
    {
        var total = 0.0;
        foreach (var (_, w) in items)
        {
            total += w;
        }

        var x = r.NextDouble() * total;
        foreach (var (item, w) in items)
        {
            x -= w;
            if (x < 0)
            {
                return item;
            }
        }

        return items[^1].Item;
    }
}
