import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src-core/**/*.test.ts'],
    // Fixtures are made by qemu-img at test time; some conversions take seconds.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores: two files at a time keeps qemu-img and our code from starving each other.
    maxWorkers: 2,
  },
});
