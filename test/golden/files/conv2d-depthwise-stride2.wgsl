// kernel 0: conv2d_3x3_dw workgroups [1,8,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// conv (rows): 1 output channels x 5 output pixels per invocation
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wid.x * 8u + lid.x;
  if (tile >= 5u) { return; }
  let block = wid.y;
  let n = wid.z;
  let group = block / 1u;
  let ocInGroup = (block % 1u) * 1u;
  let ocBase = group * 1u + ocInGroup;
  let xBase = (n * 8u + group * 1u) * 81u;
  let yBase = (n * 8u + ocBase) * 25u;
  let wBlock = block * 9u;
  var acc_0_0 = f32(0.0);
  var acc_1_0 = f32(0.0);
  var acc_2_0 = f32(0.0);
  var acc_3_0 = f32(0.0);
  var acc_4_0 = f32(0.0);
  let owb = tile % 1u;
  let rowIndex = tile / 1u;
  let oh = rowIndex % 5u;
  let od = rowIndex / 5u;
  let ow0 = owb * 5u;
  let c0 = i32(ow0) * 2 - 1;
  let col_0 = c0 + 0;
  let colOk_0 = col_0 >= 0;
  let colOff_0 = u32(select(0, col_0, colOk_0));
  let m_0 = select(0.0, 1.0, colOk_0);
  let col_1 = c0 + 1;
  let colOff_1 = u32(col_1);
  let col_2 = c0 + 2;
  let colOff_2 = u32(col_2);
  let col_3 = c0 + 3;
  let colOff_3 = u32(col_3);
  let col_4 = c0 + 4;
  let colOff_4 = u32(col_4);
  let col_5 = c0 + 5;
  let colOff_5 = u32(col_5);
  let col_6 = c0 + 6;
  let colOff_6 = u32(col_6);
  let col_7 = c0 + 7;
  let colOff_7 = u32(col_7);
  let col_8 = c0 + 8;
  let colOff_8 = u32(col_8);
  let col_9 = c0 + 9;
  let colOff_9 = u32(col_9);
  let col_10 = c0 + 10;
  let colOk_10 = col_10 < 9;
  let colOff_10 = u32(select(0, col_10, colOk_10));
  let m_10 = select(0.0, 1.0, colOk_10);
  for (var kd = 0i; kd < 1; kd++) {
    let id = i32(od) * 1 + kd * 1 - 0;
    for (var kh = 0i; kh < 3; kh++) {
      let ih = i32(oh) * 2 + kh * 1 - 1;
      if (true && ih >= 0 && ih < 9) {
        var xi = xBase + u32(id * 9 + ih) * 9u;
        var wi = wBlock + u32(kd * 3 + kh) * 3u;
        for (var ic = 0u; ic < 1u; ic++) {
          let x_0 = x[xi + colOff_0] * m_0;
          let x_1 = x[xi + colOff_1];
          let x_2 = x[xi + colOff_2];
          let x_3 = x[xi + colOff_3];
          let x_4 = x[xi + colOff_4];
          let x_5 = x[xi + colOff_5];
          let x_6 = x[xi + colOff_6];
          let x_7 = x[xi + colOff_7];
          let x_8 = x[xi + colOff_8];
          let x_9 = x[xi + colOff_9];
          let x_10 = x[xi + colOff_10] * m_10;
          let w0_0 = w[wi + 0u];
          acc_0_0 += w0_0 * x_0;
          acc_1_0 += w0_0 * x_2;
          acc_2_0 += w0_0 * x_4;
          acc_3_0 += w0_0 * x_6;
          acc_4_0 += w0_0 * x_8;
          let w1_0 = w[wi + 1u];
          acc_0_0 += w1_0 * x_1;
          acc_1_0 += w1_0 * x_3;
          acc_2_0 += w1_0 * x_5;
          acc_3_0 += w1_0 * x_7;
          acc_4_0 += w1_0 * x_9;
          let w2_0 = w[wi + 2u];
          acc_0_0 += w2_0 * x_2;
          acc_1_0 += w2_0 * x_4;
          acc_2_0 += w2_0 * x_6;
          acc_3_0 += w2_0 * x_8;
          acc_4_0 += w2_0 * x_10;
          xi += 81u;
          wi += 3u;
        }
      }
    }
  }
  {
    let plane_0 = (yBase + 0u + (od * 5u + oh) * 5u + ow0);
    y[plane_0 + 0u] = (acc_0_0);
    y[plane_0 + 1u] = (acc_1_0);
    y[plane_0 + 2u] = (acc_2_0);
    y[plane_0 + 3u] = (acc_3_0);
    y[plane_0 + 4u] = (acc_4_0);
  }
}
