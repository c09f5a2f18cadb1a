// kernel 0: matmul_tex workgroups [1,2,1]
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var b: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// matmul (texture 2x12x1): 4 rows x 4 columns per invocation
@compute @workgroup_size(4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let nt = wid.x * 4u + lid.x;
  let n0 = nt * 4u;
  if (n0 >= 12u) { return; }
  let m0 = wid.y * 4u;
  let aBase = 0u;
  let yBase = wid.z * 72u;
  let ar0 = aBase + min(m0 + 0u, 5u) * 7u;
  let ar1 = aBase + min(m0 + 1u, 5u) * 7u;
  let ar2 = aBase + min(m0 + 2u, 5u) * 7u;
  let ar3 = aBase + min(m0 + 3u, 5u) * 7u;
  let col0 = n0 + 0u;
  let col1 = n0 + 1u;
  let col2 = n0 + 2u;
  let col3 = n0 + 3u;
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var t = 0u; t < 2u; t++) {
    let k0 = t * 4u;
    let wv0 = textureLoad(b, vec2<u32>(t, col0), 0u, 0u);
    let wv1 = textureLoad(b, vec2<u32>(t, col1), 0u, 0u);
    let wv2 = textureLoad(b, vec2<u32>(t, col2), 0u, 0u);
    let wv3 = textureLoad(b, vec2<u32>(t, col3), 0u, 0u);
    let av0 = vec4<f32>(select(0.0, a[ar0 + min(k0 + 0u, 6u) * 1u], k0 + 0u < 7u), select(0.0, a[ar0 + min(k0 + 1u, 6u) * 1u], k0 + 1u < 7u), select(0.0, a[ar0 + min(k0 + 2u, 6u) * 1u], k0 + 2u < 7u), select(0.0, a[ar0 + min(k0 + 3u, 6u) * 1u], k0 + 3u < 7u));
    acc0 += vec4<f32>(dot(av0, wv0), dot(av0, wv1), dot(av0, wv2), dot(av0, wv3));
    let av1 = vec4<f32>(select(0.0, a[ar1 + min(k0 + 0u, 6u) * 1u], k0 + 0u < 7u), select(0.0, a[ar1 + min(k0 + 1u, 6u) * 1u], k0 + 1u < 7u), select(0.0, a[ar1 + min(k0 + 2u, 6u) * 1u], k0 + 2u < 7u), select(0.0, a[ar1 + min(k0 + 3u, 6u) * 1u], k0 + 3u < 7u));
    acc1 += vec4<f32>(dot(av1, wv0), dot(av1, wv1), dot(av1, wv2), dot(av1, wv3));
    let av2 = vec4<f32>(select(0.0, a[ar2 + min(k0 + 0u, 6u) * 1u], k0 + 0u < 7u), select(0.0, a[ar2 + min(k0 + 1u, 6u) * 1u], k0 + 1u < 7u), select(0.0, a[ar2 + min(k0 + 2u, 6u) * 1u], k0 + 2u < 7u), select(0.0, a[ar2 + min(k0 + 3u, 6u) * 1u], k0 + 3u < 7u));
    acc2 += vec4<f32>(dot(av2, wv0), dot(av2, wv1), dot(av2, wv2), dot(av2, wv3));
    let av3 = vec4<f32>(select(0.0, a[ar3 + min(k0 + 0u, 6u) * 1u], k0 + 0u < 7u), select(0.0, a[ar3 + min(k0 + 1u, 6u) * 1u], k0 + 1u < 7u), select(0.0, a[ar3 + min(k0 + 2u, 6u) * 1u], k0 + 2u < 7u), select(0.0, a[ar3 + min(k0 + 3u, 6u) * 1u], k0 + 3u < 7u));
    acc3 += vec4<f32>(dot(av3, wv0), dot(av3, wv1), dot(av3, wv2), dot(av3, wv3));
  }
  if (m0 + 0u < 6u) { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 12u + n; y[at] = acc0[0]; }
  if (m0 + 0u < 6u) { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 12u + n; y[at] = acc0[1]; }
  if (m0 + 0u < 6u) { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 12u + n; y[at] = acc0[2]; }
  if (m0 + 0u < 6u) { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 12u + n; y[at] = acc0[3]; }
  if (m0 + 1u < 6u) { let m = m0 + 1u; let n = 0u + n0 + 0u; let at = yBase + m * 12u + n; y[at] = acc1[0]; }
  if (m0 + 1u < 6u) { let m = m0 + 1u; let n = 0u + n0 + 1u; let at = yBase + m * 12u + n; y[at] = acc1[1]; }
  if (m0 + 1u < 6u) { let m = m0 + 1u; let n = 0u + n0 + 2u; let at = yBase + m * 12u + n; y[at] = acc1[2]; }
  if (m0 + 1u < 6u) { let m = m0 + 1u; let n = 0u + n0 + 3u; let at = yBase + m * 12u + n; y[at] = acc1[3]; }
  if (m0 + 2u < 6u) { let m = m0 + 2u; let n = 0u + n0 + 0u; let at = yBase + m * 12u + n; y[at] = acc2[0]; }
  if (m0 + 2u < 6u) { let m = m0 + 2u; let n = 0u + n0 + 1u; let at = yBase + m * 12u + n; y[at] = acc2[1]; }
  if (m0 + 2u < 6u) { let m = m0 + 2u; let n = 0u + n0 + 2u; let at = yBase + m * 12u + n; y[at] = acc2[2]; }
  if (m0 + 2u < 6u) { let m = m0 + 2u; let n = 0u + n0 + 3u; let at = yBase + m * 12u + n; y[at] = acc2[3]; }
  if (m0 + 3u < 6u) { let m = m0 + 3u; let n = 0u + n0 + 0u; let at = yBase + m * 12u + n; y[at] = acc3[0]; }
  if (m0 + 3u < 6u) { let m = m0 + 3u; let n = 0u + n0 + 1u; let at = yBase + m * 12u + n; y[at] = acc3[1]; }
  if (m0 + 3u < 6u) { let m = m0 + 3u; let n = 0u + n0 + 2u; let at = yBase + m * 12u + n; y[at] = acc3[2]; }
  if (m0 + 3u < 6u) { let m = m0 + 3u; let n = 0u + n0 + 3u; let at = yBase + m * 12u + n; y[at] = acc3[3]; }
}
