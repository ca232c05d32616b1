import { describe, expect, it } from 'vitest';
import {
  binocularPd,
  normaliseAxis,
  normaliseEye,
  parseDiopter,
  parsePrismBase,
  quarterDiopter,
  toConvention,
  transpose,
} from '../../../adapters/canonical/rx-normalize.ts';

describe('Rx normalisation', () => {
  it('transposes minus to plus cylinder and back (the same lens)', () => {
    const minus = { sphere: -2.0, cylinder: -1.25, axis: 180 };
    const plus = transpose(minus);
    expect(plus).toEqual({ sphere: -3.25, cylinder: 1.25, axis: 90 });
    expect(transpose(plus)).toEqual(minus);
    expect(transpose({ sphere: 1.5, cylinder: 0.75, axis: 45 })).toEqual({ sphere: 2.25, cylinder: -0.75, axis: 135 });
    expect(transpose({ sphere: 1.5, cylinder: 0.75, axis: 135 })).toEqual({ sphere: 2.25, cylinder: -0.75, axis: 45 });
  });

  it('leaves spherical prescriptions and the wanted convention untouched', () => {
    expect(toConvention({ sphere: -1 }, 'plus')).toEqual({ sphere: -1 });
    expect(toConvention({ sphere: -1, cylinder: -0.5, axis: 10 }, 'minus')).toEqual({ sphere: -1, cylinder: -0.5, axis: 10 });
  });

  it('keeps axes within 1–180', () => {
    expect([0, 180, 181, 90, 270, -10, 360].map(normaliseAxis)).toEqual([180, 180, 1, 90, 90, 170, 180]);
  });

  it('rounds to 0.25 D and says so, drops an axis without a cylinder, flags a cylinder without an axis', () => {
    const r = normaliseEye({ sphere: -1.3, cylinder: -0.5, axis: 0, add: 2.12 }, 'minus');
    expect(r.eye).toEqual({ sphere: -1.25, cylinder: -0.5, axis: 180, add: 2 });
    expect(r.problems.map((p) => p.field)).toEqual(['sphere']);
    expect(normaliseEye({ sphere: 1, axis: 90 }, 'minus').eye).toEqual({ sphere: 1 });
    expect(normaliseEye({ sphere: 1, cylinder: -1 }, 'minus').problems).toEqual([{ field: 'axis', problem: 'cylinder without an axis' }]);
    expect(normaliseEye({ sphere: 0, cylinder: -0.75, axis: 95 }, 'plus').eye).toEqual({ sphere: -0.75, cylinder: 0.75, axis: 5 });
  });

  it('reads diopters and prism bases as PMSs write them', () => {
    expect(['+1.25', '-0.50', 'PL', 'plano', '1,75', 'SPH', '', 'abc'].map(parseDiopter)).toEqual([
      1.25,
      -0.5,
      0,
      0,
      1.75,
      0,
      undefined,
      undefined,
    ]);
    expect(['BU', 'bd', 'Base In', 'OUT', 'nasal', 'temporal', 'x'].map(parsePrismBase)).toEqual([
      'up',
      'down',
      'in',
      'out',
      'in',
      'out',
      undefined,
    ]);
    expect(quarterDiopter(-0.1)).toBe(0);
    expect(Object.is(quarterDiopter(-0.1), -0)).toBe(false);
  });

  it('sums monocular PDs', () => {
    expect(binocularPd(31.5, 32)).toBe(63.5);
    expect(binocularPd(31.5, undefined)).toBeUndefined();
  });
});
